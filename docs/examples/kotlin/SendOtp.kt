// POST /v1/otp/send. Usage: RELAYGATE_TOKEN=rgat_... kotlin -cp relaygate.jar relaygate.SendOtpKt +998901234567 [purpose]
package relaygate

import kotlin.system.exitProcess

fun main(args: Array<String>) {
    if (args.size !in 1..2) {
        System.err.println("usage: SendOtp <to> [purpose]")
        exitProcess(2)
    }
    Relaygate.run {
        val otp = Relaygate().post(
            "/v1/otp/send",
            mapOf("to" to args[0], "purpose" to args.getOrElse(1) { "login" }, "expires_in_seconds" to 300)
        )
        println("otp_id=${otp["otp_id"]} status=${otp["status"]} expires_in_seconds=${otp["expires_in_seconds"]}")
        0
    }
}
