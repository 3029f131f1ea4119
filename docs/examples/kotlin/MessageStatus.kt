// GET /v1/messages/status. Usage: RELAYGATE_TOKEN=rgat_... kotlin -cp relaygate.jar relaygate.MessageStatusKt req_01H...
package relaygate

import kotlin.system.exitProcess

fun main(args: Array<String>) {
    if (args.size != 1) {
        System.err.println("usage: MessageStatus <request_id>")
        exitProcess(2)
    }
    Relaygate.run {
        val m = Relaygate().get("/v1/messages/status?" + Relaygate.query("request_id", args[0]))
        println(
            "status=${m["status"]} attempts=${m["attempts"]} device=${m["device_name"] ?: "-"} " +
                "failure_reason=${m["failure_reason"] ?: "-"}"
        )
        0
    }
}
