import java.util.Map;
import java.util.UUID;

/** POST /v1/sms/send. Usage: RELAYGATE_TOKEN=rgat_... java SendSms +998901234567 "Your order #42 shipped" */
public final class SendSms {
    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: java SendSms <to> <message>");
            System.exit(2);
        }
        try {
            Map<String, Object> answer = Relaygate.fromEnv().post(
                    "/v1/sms/send",
                    Map.of("to", args[0], "message", args[1]),
                    // A retry with the same key never sends a second SMS.
                    Map.of("Idempotency-Key", UUID.randomUUID().toString()));
            System.out.println(answer.get("status") + " request_id=" + answer.get("request_id"));
        } catch (Exception e) {
            Relaygate.exit(e);
        }
    }
}
