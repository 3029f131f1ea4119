// POST /v1/otp/verify; exit status 0 only on "success".
// Usage: RELAYGATE_TOKEN=rgat_... kotlin -cp relaygate.jar relaygate.VerifyOtpKt otp_01H... 123456
package relaygate

import kotlin.system.exitProcess

fun main(args: Array<String>) {
    if (args.size != 2) {
        System.err.println("usage: VerifyOtp <otp_id> <code>")
        exitProcess(2)
    }
    Relaygate.run {
        val result = Relaygate().post("/v1/otp/verify", mapOf("otp_id" to args[0], "code" to args[1]))
        var line = "status=${result["status"]} attempts_left=${result["attempts_left"]}"
        result["reason"]?.let { line += " reason=$it" }
        println(line)
        if (result["status"] == "success") 0 else 1
    }
}
