import java.util.Map;
import java.util.Objects;

/** GET /v1/messages/status. Usage: RELAYGATE_TOKEN=rgat_... java MessageStatus req_01H... */
public final class MessageStatus {
    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: java MessageStatus <request_id>");
            System.exit(2);
        }
        try {
            Map<String, Object> m = Relaygate.fromEnv().get("/v1/messages/status?" + Relaygate.query("request_id", args[0]));
            System.out.println("status=" + m.get("status") + " attempts=" + m.get("attempts")
                    + " device=" + Objects.toString(m.get("device_name"), "-")
                    + " failure_reason=" + Objects.toString(m.get("failure_reason"), "-"));
        } catch (Exception e) {
            Relaygate.exit(e);
        }
    }
}
