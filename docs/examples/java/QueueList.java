import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * POST /v1/recipient-lists/queue: every number of the list its own message.
 * Usage: RELAYGATE_TOKEN=rgat_... java QueueList lst_01HV... "Hi {name}, our {city} shop is open"
 */
public final class QueueList {
    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: java QueueList <list_id> <message>");
            System.exit(2);
        }
        try {
            Map<String, Object> answer = Relaygate.fromEnv().post(
                    "/v1/recipient-lists/queue",
                    Map.of("list_id", args[0], "message", args[1]),
                    // A retry with the same key never queues the list twice.
                    Map.of("Idempotency-Key", UUID.randomUUID().toString()));
            System.out.println(answer.get("status") + " batch_id=" + answer.get("batch_id")
                    + " queued=" + answer.get("queued") + " skipped=" + answer.get("skipped_total"));
            for (Object item : (List<?>) answer.get("skipped")) {
                Map<?, ?> skipped = (Map<?, ?>) item;
                System.out.println("  skipped " + skipped.get("phone") + " (" + skipped.get("reason") + ")");
            }
        } catch (Exception e) {
            Relaygate.exit(e);
        }
    }
}
