import java.util.Map;

/** GET /v1/health (no token). Usage: java Health */
public final class Health {
    public static void main(String[] args) {
        try {
            Map<String, Object> h = Relaygate.fromEnv().get("/v1/health");
            System.out.println("status=" + h.get("status") + " database=" + h.get("database") + " version=" + h.get("version"));
        } catch (Exception e) {
            Relaygate.exit(e);
        }
    }
}
