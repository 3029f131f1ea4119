// POST /v1/sms/send. Usage: RELAYGATE_TOKEN=rgat_... kotlin -cp relaygate.jar relaygate.SendSmsKt +998901234567 "Hello"
package relaygate

import java.util.UUID
import kotlin.system.exitProcess

fun main(args: Array<String>) {
    if (args.size != 2) {
        System.err.println("usage: SendSms <to> <message>")
        exitProcess(2)
    }
    val (to, message) = args
    Relaygate.run {
        val answer = Relaygate().post(
            "/v1/sms/send",
            mapOf("to" to to, "message" to message),
            // A retry with the same key never sends a second SMS.
            mapOf("Idempotency-Key" to UUID.randomUUID().toString())
        )
        println("${answer["status"]} request_id=${answer["request_id"]}")
        0
    }
}
