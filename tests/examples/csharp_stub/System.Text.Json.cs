// Signatures of the System.Text.Json members the C# examples use, copied from .NET 8's public
// API (learn.microsoft.com/dotnet/api/system.text.json), so Mono's mcs can type-check the
// examples: Mono ships no System.Text.Json. Bodies throw; nothing here is ever run.
using System;

namespace System.Text.Json
{
    public enum JsonValueKind : byte { Undefined = 0, Object = 1, Array = 2, String = 3, Number = 4, True = 5, False = 6, Null = 7 }

    public class JsonException : Exception
    {
        public JsonException() { }
        public JsonException(string message) : base(message) { }
    }

    public sealed class JsonSerializerOptions { }

    public static class JsonSerializer
    {
        public static string Serialize<TValue>(TValue value, JsonSerializerOptions options = null) { throw new NotSupportedException(); }
    }

    public struct JsonDocumentOptions { }

    public sealed class JsonDocument : IDisposable
    {
        private JsonDocument() { }
        public JsonElement RootElement { get { throw new NotSupportedException(); } }
        public static JsonDocument Parse(string json, JsonDocumentOptions options = default(JsonDocumentOptions)) { throw new NotSupportedException(); }
        public void Dispose() { }
    }

    public struct JsonElement
    {
        public JsonValueKind ValueKind { get { throw new NotSupportedException(); } }
        public JsonElement GetProperty(string propertyName) { throw new NotSupportedException(); }
        public bool TryGetProperty(string propertyName, out JsonElement value) { throw new NotSupportedException(); }
        public string GetString() { throw new NotSupportedException(); }
        public int GetInt32() { throw new NotSupportedException(); }
        public bool GetBoolean() { throw new NotSupportedException(); }
        public string GetRawText() { throw new NotSupportedException(); }
        public ArrayEnumerator EnumerateArray() { throw new NotSupportedException(); }
        public override string ToString() { throw new NotSupportedException(); }

        public struct ArrayEnumerator : System.Collections.Generic.IEnumerable<JsonElement>, System.Collections.Generic.IEnumerator<JsonElement>
        {
            public JsonElement Current { get { throw new NotSupportedException(); } }
            object System.Collections.IEnumerator.Current { get { throw new NotSupportedException(); } }
            public ArrayEnumerator GetEnumerator() { throw new NotSupportedException(); }
            System.Collections.Generic.IEnumerator<JsonElement> System.Collections.Generic.IEnumerable<JsonElement>.GetEnumerator() { throw new NotSupportedException(); }
            System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() { throw new NotSupportedException(); }
            public bool MoveNext() { throw new NotSupportedException(); }
            public void Reset() { throw new NotSupportedException(); }
            public void Dispose() { }
        }
    }
}

