// GET /v1/health (no token). Usage: kotlin -cp relaygate.jar relaygate.HealthKt
package relaygate

fun main() = Relaygate.run {
    val health = Relaygate().get("/v1/health")
    println("status=${health["status"]} database=${health["database"]} version=${health["version"]}")
    0
}
