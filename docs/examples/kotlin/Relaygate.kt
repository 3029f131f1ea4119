// A small relaygate API client for Kotlin/JVM on java.net.http only (JDK 11+): base URL and
// token from the environment, a minimal JSON reader/writer (in an application use
// kotlinx.serialization or Moshi instead; on Android, org.json), and RelaygateException
// carrying our error code and message.
package relaygate

import java.net.URI
import java.net.URLEncoder
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.charset.StandardCharsets
import java.time.Duration
import kotlin.system.exitProcess

/** relaygate's error shape: {"ok": false, "error": {"code", "message", "details"}}. */
class RelaygateException(val httpStatus: Int, val code: String, message: String, val details: Any?) :
    Exception(message)

class Relaygate(
    private val baseUrl: String = System.getenv("RELAYGATE_BASE_URL") ?: "http://127.0.0.1:8080/api",
    private val token: String? = System.getenv("RELAYGATE_TOKEN")
) {
    // HTTP/1.1: by default the JDK client offers "Upgrade: h2c" on http:// URLs, and servers
    // without HTTP/2 (uvicorn among them) may then lose the request body.
    private val http: HttpClient = HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5))
        .build()

    fun get(path: String): Map<String, Any?> = send("GET", path, null, emptyMap())

    fun post(path: String, body: Map<String, Any?>, headers: Map<String, String> = emptyMap()): Map<String, Any?> =
        send("POST", path, body, headers)

    @Suppress("UNCHECKED_CAST")
    private fun send(method: String, path: String, body: Map<String, Any?>?, headers: Map<String, String>): Map<String, Any?> {
        val request = HttpRequest.newBuilder(URI.create(baseUrl + path))
            .timeout(Duration.ofSeconds(15))
            .header("Accept", "application/json")
        if (!token.isNullOrEmpty()) request.header("Authorization", "Bearer $token")
        headers.forEach { (name, value) -> request.header(name, value) }
        if (body != null) {
            request.header("Content-Type", "application/json")
            request.method(method, HttpRequest.BodyPublishers.ofString(Json.write(body)))
        } else {
            request.method(method, HttpRequest.BodyPublishers.noBody())
        }
        val response = http.send(request.build(), HttpResponse.BodyHandlers.ofString())
        val data = try {
            Json.parse(response.body()) as? Map<String, Any?> ?: emptyMap()
        } catch (e: IllegalArgumentException) {
            throw RelaygateException(response.statusCode(), "bad_response", "HTTP ${response.statusCode()}: ${response.body()}", null)
        }
        if (data["ok"] != true) {
            val error = data["error"] as? Map<String, Any?> ?: emptyMap()
            throw RelaygateException(
                response.statusCode(),
                error["code"]?.toString() ?: "unknown",
                error["message"]?.toString() ?: "HTTP ${response.statusCode()}",
                error["details"]
            )
        }
        return data
    }

    companion object {
        fun query(name: String, value: String): String = "$name=" + URLEncoder.encode(value, StandardCharsets.UTF_8)

        /** Runs [block]; prints "error <code>: <message>" to stderr and exits 1 on failure. */
        fun run(block: () -> Int) {
            val status = try {
                block()
            } catch (e: RelaygateException) {
                System.err.println("error ${e.code}: ${e.message}")
                if (e.details != null) System.err.println(Json.write(e.details))
                1
            } catch (e: java.io.IOException) {
                System.err.println("error: $e")
                1
            }
            exitProcess(status)
        }
    }
}

/** Just enough JSON for these examples. */
object Json {
    fun write(value: Any?): String = when (value) {
        null -> "null"
        is String -> quote(value)
        is Number, is Boolean -> value.toString()
        is Map<*, *> -> value.entries.joinToString(",", "{", "}") { quote(it.key.toString()) + ":" + write(it.value) }
        is List<*> -> value.joinToString(",", "[", "]") { write(it) }
        else -> throw IllegalArgumentException("cannot write ${value::class}")
    }

    private fun quote(s: String): String = buildString {
        append('"')
        for (c in s) {
            when {
                c == '"' -> append("\\\"")
                c == '\\' -> append("\\\\")
                c == '\n' -> append("\\n")
                c < ' ' -> append(String.format("\\u%04x", c.toInt()))
                else -> append(c)
            }
        }
        append('"')
    }

    fun parse(text: String): Any? {
        val reader = Reader(text)
        val value = reader.value()
        reader.skipWhitespace()
        require(reader.pos == text.length) { "trailing data" }
        return value
    }

    private class Reader(val s: String) {
        var pos = 0

        fun skipWhitespace() {
            while (pos < s.length && s[pos].isWhitespace()) pos++
        }

        fun peek(): Char {
            skipWhitespace()
            require(pos < s.length) { "unexpected end" }
            return s[pos]
        }

        fun value(): Any? = when (peek()) {
            '{' -> {
                pos++
                val map = LinkedHashMap<String, Any?>()
                if (peek() == '}') pos++ else while (true) {
                    val key = string()
                    require(peek() == ':') { "expected :" }
                    pos++
                    map[key] = value()
                    val next = peek()
                    pos++
                    if (next == '}') break
                    require(next == ',') { "expected , or }" }
                }
                map
            }
            '[' -> {
                pos++
                val list = ArrayList<Any?>()
                if (peek() == ']') pos++ else while (true) {
                    list.add(value())
                    val next = peek()
                    pos++
                    if (next == ']') break
                    require(next == ',') { "expected , or ]" }
                }
                list
            }
            '"' -> string()
            else -> literal()
        }

        private fun literal(): Any? {
            for ((word, result) in listOf("true" to true, "false" to false, "null" to null)) {
                if (s.startsWith(word, pos)) {
                    pos += word.length
                    return result
                }
            }
            val start = pos
            while (pos < s.length && s[pos] in "+-0123456789.eE") pos++
            require(pos > start) { "unexpected ${s[start]}" }
            val number = s.substring(start, pos)
            return number.toLongOrNull() ?: number.toDouble()
        }

        fun string(): String {
            require(peek() == '"') { "expected string" }
            pos++
            val out = StringBuilder()
            while (true) {
                require(pos < s.length) { "unterminated string" }
                val c = s[pos++]
                if (c == '"') return out.toString()
                if (c != '\\') {
                    out.append(c)
                    continue
                }
                when (val e = s[pos++]) {
                    'n' -> out.append('\n')
                    'r' -> out.append('\r')
                    't' -> out.append('\t')
                    'b' -> out.append('\b')
                    'f' -> out.append('\u000c')
                    'u' -> {
                        out.append(s.substring(pos, pos + 4).toInt(16).toChar())
                        pos += 4
                    }
                    else -> out.append(e)
                }
            }
        }
    }
}
