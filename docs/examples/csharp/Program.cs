// relaygate API examples, one subcommand each:
//   dotnet run -- health
//   dotnet run -- send-sms +998901234567 "Your order #42 shipped"
//   dotnet run -- message-status req_01H...
//   dotnet run -- send-otp +998901234567 [purpose]
//   dotnet run -- verify-otp otp_01H... 123456      (exit status 0 only on "success")
//   dotnet run -- queue-list lst_01H... "Hi {name}, our {city} shop is open"
//   dotnet run -- webhook-receiver                  (RELAYGATE_WEBHOOK_SECRET, PORT)
using System;
using System.Collections.Generic;
using System.Net.Http;
using System.Text.Json;
using System.Threading.Tasks;

namespace Relaygate.Examples
{
    public static class Program
    {
        public static int Main(string[] args) => RunAsync(args).GetAwaiter().GetResult();

        private static async Task<int> RunAsync(string[] args)
        {
            if (args.Length == 0)
            {
                return Usage();
            }
            try
            {
                string command = args[0];
                if (command == "health" && args.Length == 1) return await Health();
                if (command == "send-sms" && args.Length == 3) return await SendSms(args[1], args[2]);
                if (command == "message-status" && args.Length == 2) return await MessageStatus(args[1]);
                if (command == "send-otp" && (args.Length == 2 || args.Length == 3))
                {
                    return await SendOtp(args[1], args.Length == 3 ? args[2] : "login");
                }
                if (command == "verify-otp" && args.Length == 3) return await VerifyOtp(args[1], args[2]);
                if (command == "queue-list" && args.Length == 3) return await QueueList(args[1], args[2]);
                if (command == "webhook-receiver" && args.Length == 1) return WebhookReceiver.Run();
                return Usage();
            }
            catch (RelaygateException e)
            {
                Console.Error.WriteLine("error " + e.Code + ": " + e.Message);
                if (e.Details != null)
                {
                    Console.Error.WriteLine(e.Details);
                }
                return 1;
            }
            catch (HttpRequestException e)
            {
                Console.Error.WriteLine("error: " + e.Message);
                return 1;
            }
            catch (TaskCanceledException)
            {
                Console.Error.WriteLine("error: request timed out");
                return 1;
            }
        }

        private static int Usage()
        {
            Console.Error.WriteLine("usage: health | send-sms <to> <message> | message-status <request_id> | " +
                                    "send-otp <to> [purpose] | verify-otp <otp_id> <code> | queue-list <list_id> <message> | " +
                                    "webhook-receiver");
            return 2;
        }

        // GET /v1/health (no token).
        private static async Task<int> Health()
        {
            using (var client = new RelaygateClient())
            using (JsonDocument doc = await client.GetAsync("v1/health"))
            {
                JsonElement h = doc.RootElement;
                Console.WriteLine("status=" + h.GetProperty("status").GetString() + " database=" +
                                  h.GetProperty("database").GetString() + " version=" + h.GetProperty("version").GetString());
                return 0;
            }
        }

        // POST /v1/sms/send.
        private static async Task<int> SendSms(string to, string message)
        {
            // A retry with the same Idempotency-Key never sends a second SMS.
            var headers = new Dictionary<string, string> { ["Idempotency-Key"] = Guid.NewGuid().ToString() };
            using (var client = new RelaygateClient())
            using (JsonDocument doc = await client.PostAsync("v1/sms/send", new Dictionary<string, object> { ["to"] = to, ["message"] = message }, headers))
            {
                JsonElement a = doc.RootElement;
                Console.WriteLine(a.GetProperty("status").GetString() + " request_id=" + a.GetProperty("request_id").GetString());
                return 0;
            }
        }

        // POST /v1/recipient-lists/queue: every number of the list its own message.
        private static async Task<int> QueueList(string listId, string message)
        {
            // A retry with the same Idempotency-Key never queues the list twice.
            var headers = new Dictionary<string, string> { ["Idempotency-Key"] = Guid.NewGuid().ToString() };
            var body = new Dictionary<string, object> { ["list_id"] = listId, ["message"] = message };
            using (var client = new RelaygateClient())
            using (JsonDocument doc = await client.PostAsync("v1/recipient-lists/queue", body, headers))
            {
                JsonElement a = doc.RootElement;
                Console.WriteLine(a.GetProperty("status").GetString() + " batch_id=" + a.GetProperty("batch_id").GetString() +
                                  " queued=" + a.GetProperty("queued").GetInt32() +
                                  " skipped=" + a.GetProperty("skipped_total").GetInt32());
                foreach (JsonElement skipped in a.GetProperty("skipped").EnumerateArray())
                {
                    Console.WriteLine("  skipped " + skipped.GetProperty("phone").GetString() + " (" +
                                      skipped.GetProperty("reason").GetString() + ")");
                }
                return 0;
            }
        }

        // GET /v1/messages/status.
        private static async Task<int> MessageStatus(string requestId)
        {
            using (var client = new RelaygateClient())
            using (JsonDocument doc = await client.GetAsync("v1/messages/status?request_id=" + Uri.EscapeDataString(requestId)))
            {
                JsonElement m = doc.RootElement;
                Console.WriteLine("status=" + m.GetProperty("status").GetString() + " attempts=" + m.GetProperty("attempts").GetInt32() +
                                  " device=" + RelaygateClient.Text(m, "device_name") +
                                  " failure_reason=" + RelaygateClient.Text(m, "failure_reason"));
                return 0;
            }
        }

        // POST /v1/otp/send.
        private static async Task<int> SendOtp(string to, string purpose)
        {
            var body = new Dictionary<string, object> { ["to"] = to, ["purpose"] = purpose, ["expires_in_seconds"] = 300 };
            using (var client = new RelaygateClient())
            using (JsonDocument doc = await client.PostAsync("v1/otp/send", body))
            {
                JsonElement otp = doc.RootElement;
                Console.WriteLine("otp_id=" + otp.GetProperty("otp_id").GetString() + " status=" + otp.GetProperty("status").GetString() +
                                  " expires_in_seconds=" + otp.GetProperty("expires_in_seconds").GetInt32());
                return 0;
            }
        }

        // POST /v1/otp/verify.
        private static async Task<int> VerifyOtp(string otpId, string code)
        {
            using (var client = new RelaygateClient())
            using (JsonDocument doc = await client.PostAsync("v1/otp/verify", new Dictionary<string, object> { ["otp_id"] = otpId, ["code"] = code }))
            {
                JsonElement r = doc.RootElement;
                string status = r.GetProperty("status").GetString();
                string line = "status=" + status + " attempts_left=" + r.GetProperty("attempts_left").GetInt32();
                if (r.TryGetProperty("reason", out JsonElement reason) && reason.ValueKind == JsonValueKind.String)
                {
                    line += " reason=" + reason.GetString();
                }
                Console.WriteLine(line);
                return status == "success" ? 0 : 1;
            }
        }
    }
}
