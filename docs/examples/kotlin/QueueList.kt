// POST /v1/recipient-lists/queue: every number of the list its own message.
// Usage: RELAYGATE_TOKEN=rgat_... kotlin -cp relaygate.jar relaygate.QueueListKt lst_01HV... "Hi {name}"
package relaygate

import java.util.UUID
import kotlin.system.exitProcess

fun main(args: Array<String>) {
    if (args.size != 2) {
        System.err.println("usage: QueueList <list_id> <message>")
        exitProcess(2)
    }
    val (listId, message) = args
    Relaygate.run {
        val answer = Relaygate().post(
            "/v1/recipient-lists/queue",
            mapOf("list_id" to listId, "message" to message),
            // A retry with the same key never queues the list twice.
            mapOf("Idempotency-Key" to UUID.randomUUID().toString())
        )
        println(
            "${answer["status"]} batch_id=${answer["batch_id"]} queued=${answer["queued"]} " +
                "skipped=${answer["skipped_total"]}"
        )
        for (item in answer["skipped"] as List<*>) {
            val skipped = item as Map<*, *>
            println("  skipped ${skipped["phone"]} (${skipped["reason"]})")
        }
        0
    }
}
