// A tiny webhook receiver (JDK only: com.sun.net.httpserver and javax.crypto) that verifies
// relaygate's Standard Webhooks signatures: 204 for a genuine event, 401 for anything else.
// Usage: RELAYGATE_WEBHOOK_SECRET=whsec_... PORT=8000 kotlin -cp relaygate.jar relaygate.WebhookReceiverKt
package relaygate

import com.sun.net.httpserver.HttpServer
import java.net.InetSocketAddress
import java.security.MessageDigest
import java.util.Base64
import javax.crypto.Mac
import javax.crypto.spec.SecretKeySpec
import kotlin.math.abs

const val TOLERANCE_SECONDS = 5 * 60L

class InvalidSignature(message: String) : Exception(message)

/** Throws [InvalidSignature] unless one of the "v1,<sig>" signatures matches and the time is fresh. */
fun verifyWebhook(secret: String, body: ByteArray, msgId: String?, timestamp: String?, signatures: String?) {
    if (msgId.isNullOrEmpty() || timestamp.isNullOrEmpty() || signatures.isNullOrEmpty()) {
        throw InvalidSignature("missing webhook headers")
    }
    val sentAt = timestamp.toLongOrNull() ?: throw InvalidSignature("bad timestamp")
    if (abs(System.currentTimeMillis() / 1000 - sentAt) > TOLERANCE_SECONDS) {
        throw InvalidSignature("timestamp too far from now")
    }
    val mac = Mac.getInstance("HmacSHA256")
    mac.init(SecretKeySpec(Base64.getDecoder().decode(secret.removePrefix("whsec_")), "HmacSHA256"))
    mac.update("$msgId.$timestamp.".toByteArray())
    val expected = mac.doFinal(body)
    // During a secret rotation there are several signatures, separated by spaces.
    val matched = signatures.split(" ").any { candidate ->
        val parts = candidate.split(",", limit = 2)
        parts.size == 2 && parts[0] == "v1" &&
            runCatching { MessageDigest.isEqual(Base64.getDecoder().decode(parts[1]), expected) }.getOrDefault(false)
    }
    if (!matched) throw InvalidSignature("no matching signature")
}

fun main() {
    val secret = System.getenv("RELAYGATE_WEBHOOK_SECRET") ?: error("set RELAYGATE_WEBHOOK_SECRET (whsec_...)")
    val port = (System.getenv("PORT") ?: "8000").toInt()
    val server = HttpServer.create(InetSocketAddress("127.0.0.1", port), 0)
    server.createContext("/") { exchange ->
        val body = exchange.requestBody.use { it.readBytes() } // the raw bytes: verify before parsing
        val headers = exchange.requestHeaders
        val msgId = headers.getFirst("webhook-id")
        val status = try {
            verifyWebhook(secret, body, msgId, headers.getFirst("webhook-timestamp"), headers.getFirst("webhook-signature"))
            val event = Json.parse(String(body, Charsets.UTF_8)) as Map<*, *>
            println("verified ${event["type"]} id=$msgId") // de-duplicate by msgId: retries reuse it
            204
        } catch (e: InvalidSignature) {
            println("rejected: ${e.message}")
            401
        }
        exchange.sendResponseHeaders(status, -1)
        exchange.close()
    }
    server.start()
    println("listening on http://127.0.0.1:$port")
}
