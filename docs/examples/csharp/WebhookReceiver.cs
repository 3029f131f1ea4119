// A tiny webhook receiver (System.Net.HttpListener) that verifies relaygate's Standard Webhooks
// signatures: 204 for a genuine event, 401 for anything else.
// Usage: RELAYGATE_WEBHOOK_SECRET=whsec_... PORT=8000 dotnet run -- webhook-receiver
using System;
using System.IO;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Relaygate.Examples
{
    public static class WebhookReceiver
    {
        private const long ToleranceSeconds = 5 * 60;

        public class InvalidSignatureException : Exception
        {
            public InvalidSignatureException(string message) : base(message) { }
        }

        /// <summary>Throws unless one of the "v1,&lt;sig&gt;" signatures matches and the timestamp is fresh.</summary>
        public static void Verify(string secret, byte[] body, string msgId, string timestamp, string signatures)
        {
            if (string.IsNullOrEmpty(msgId) || string.IsNullOrEmpty(timestamp) || string.IsNullOrEmpty(signatures))
            {
                throw new InvalidSignatureException("missing webhook headers");
            }
            if (!long.TryParse(timestamp, out long sentAt))
            {
                throw new InvalidSignatureException("bad timestamp");
            }
            if (Math.Abs(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - sentAt) > ToleranceSeconds)
            {
                throw new InvalidSignatureException("timestamp too far from now");
            }
            byte[] key = Convert.FromBase64String(secret.StartsWith("whsec_") ? secret.Substring(6) : secret);
            byte[] prefix = Encoding.UTF8.GetBytes(msgId + "." + timestamp + ".");
            byte[] signed = new byte[prefix.Length + body.Length];
            Buffer.BlockCopy(prefix, 0, signed, 0, prefix.Length);
            Buffer.BlockCopy(body, 0, signed, prefix.Length, body.Length);
            byte[] expected;
            using (var hmac = new HMACSHA256(key))
            {
                expected = hmac.ComputeHash(signed);
            }
            // During a secret rotation there are several signatures, separated by spaces.
            foreach (string candidate in signatures.Split(' '))
            {
                string[] parts = candidate.Split(new[] { ',' }, 2);
                if (parts.Length != 2 || parts[0] != "v1")
                {
                    continue;
                }
                byte[] given;
                try
                {
                    given = Convert.FromBase64String(parts[1]);
                }
                catch (FormatException)
                {
                    continue;
                }
                if (given.Length == expected.Length && CryptographicOperations.FixedTimeEquals(given, expected))
                {
                    return;
                }
            }
            throw new InvalidSignatureException("no matching signature");
        }

        public static int Run()
        {
            string secret = Environment.GetEnvironmentVariable("RELAYGATE_WEBHOOK_SECRET");
            if (string.IsNullOrEmpty(secret))
            {
                Console.Error.WriteLine("set RELAYGATE_WEBHOOK_SECRET to the endpoint secret (whsec_...)");
                return 2;
            }
            string port = Environment.GetEnvironmentVariable("PORT") ?? "8000";
            var listener = new HttpListener();
            listener.Prefixes.Add("http://127.0.0.1:" + port + "/");
            listener.Start();
            Console.WriteLine("listening on http://127.0.0.1:" + port);
            while (true)
            {
                HttpListenerContext context = listener.GetContext();
                byte[] body;
                using (var buffer = new MemoryStream())
                {
                    context.Request.InputStream.CopyTo(buffer); // the raw bytes: verify before parsing
                    body = buffer.ToArray();
                }
                string msgId = context.Request.Headers["webhook-id"];
                try
                {
                    Verify(secret, body, msgId, context.Request.Headers["webhook-timestamp"], context.Request.Headers["webhook-signature"]);
                    using (JsonDocument doc = JsonDocument.Parse(Encoding.UTF8.GetString(body)))
                    {
                        // De-duplicate by msgId: retries carry the same webhook-id.
                        Console.WriteLine("verified " + doc.RootElement.GetProperty("type").GetString() + " id=" + msgId);
                    }
                    context.Response.StatusCode = 204;
                }
                catch (InvalidSignatureException e)
                {
                    Console.WriteLine("rejected: " + e.Message);
                    context.Response.StatusCode = 401;
                }
                context.Response.Close();
            }
        }
    }
}
