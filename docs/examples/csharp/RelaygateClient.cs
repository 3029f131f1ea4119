// A small relaygate API client on System.Net.Http and System.Text.Json (both in the .NET
// base library): base URL and token from the environment, RelaygateException carrying our
// error code and message.
using System;
using System.Collections.Generic;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Threading.Tasks;

namespace Relaygate.Examples
{
    /// <summary>relaygate's error shape: {"ok": false, "error": {"code", "message", "details"}}.</summary>
    public class RelaygateException : Exception
    {
        public int HttpStatus { get; }
        public string Code { get; }
        public string Details { get; }

        public RelaygateException(int httpStatus, string code, string message, string details) : base(message)
        {
            HttpStatus = httpStatus;
            Code = code;
            Details = details;
        }
    }

    public sealed class RelaygateClient : IDisposable
    {
        private readonly HttpClient http;

        /// <summary>RELAYGATE_BASE_URL (default http://127.0.0.1:8080/api) and RELAYGATE_TOKEN.</summary>
        public RelaygateClient()
        {
            string baseUrl = Environment.GetEnvironmentVariable("RELAYGATE_BASE_URL") ?? "http://127.0.0.1:8080/api";
            http = new HttpClient { BaseAddress = new Uri(baseUrl.TrimEnd('/') + "/"), Timeout = TimeSpan.FromSeconds(15) };
            http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            string token = Environment.GetEnvironmentVariable("RELAYGATE_TOKEN");
            if (!string.IsNullOrEmpty(token))
            {
                http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }
        }

        public Task<JsonDocument> GetAsync(string path) => SendAsync(HttpMethod.Get, path, null, null);

        public Task<JsonDocument> PostAsync(string path, object body, IDictionary<string, string> headers = null) =>
            SendAsync(HttpMethod.Post, path, body, headers);

        /// <summary>Sends the request; returns the parsed answer, or throws RelaygateException.</summary>
        private async Task<JsonDocument> SendAsync(HttpMethod method, string path, object body, IDictionary<string, string> headers)
        {
            // Paths are relative to the base URL: "v1/health", not "/v1/health".
            using (var request = new HttpRequestMessage(method, path.TrimStart('/')))
            {
                if (body != null)
                {
                    request.Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
                }
                if (headers != null)
                {
                    foreach (var header in headers)
                    {
                        request.Headers.Add(header.Key, header.Value);
                    }
                }
                using (HttpResponseMessage response = await http.SendAsync(request))
                {
                    string raw = await response.Content.ReadAsStringAsync();
                    JsonDocument doc;
                    try
                    {
                        doc = JsonDocument.Parse(raw);
                    }
                    catch (JsonException)
                    {
                        throw new RelaygateException((int)response.StatusCode, "bad_response", "HTTP " + (int)response.StatusCode + ": " + raw, null);
                    }
                    JsonElement root = doc.RootElement;
                    if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("ok", out JsonElement ok) && ok.ValueKind == JsonValueKind.True)
                    {
                        return doc;
                    }
                    string code = "unknown", message = "HTTP " + (int)response.StatusCode, details = null;
                    if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("error", out JsonElement error))
                    {
                        code = error.GetProperty("code").GetString();
                        message = error.GetProperty("message").GetString();
                        if (error.TryGetProperty("details", out JsonElement d) && d.ValueKind == JsonValueKind.Object)
                        {
                            details = d.GetRawText();
                        }
                    }
                    doc.Dispose();
                    throw new RelaygateException((int)response.StatusCode, code, message, details);
                }
            }
        }

        public void Dispose() => http.Dispose();

        /// <summary>A string property, or "-" when it is null or missing.</summary>
        public static string Text(JsonElement obj, string name) =>
            obj.TryGetProperty(name, out JsonElement v) && v.ValueKind != JsonValueKind.Null ? v.ToString() : "-";
    }
}
