import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * A tiny webhook receiver (JDK only: com.sun.net.httpserver and javax.crypto) that verifies
 * relaygate's Standard Webhooks signatures: 204 for a genuine event, 401 for anything else.
 * Usage: RELAYGATE_WEBHOOK_SECRET=whsec_... PORT=8000 java WebhookReceiver
 */
public final class WebhookReceiver {
    static final long TOLERANCE_SECONDS = 5 * 60;

    static final class InvalidSignature extends Exception {
        InvalidSignature(String message) {
            super(message);
        }
    }

    /** Throws unless one of the "v1,<sig>" signatures matches and the timestamp is fresh. */
    static void verify(String secret, byte[] body, String msgId, String timestamp, String signatures)
            throws InvalidSignature, GeneralSecurityException {
        if (msgId == null || timestamp == null || signatures == null) throw new InvalidSignature("missing webhook headers");
        long sentAt;
        try {
            sentAt = Long.parseLong(timestamp);
        } catch (NumberFormatException e) {
            throw new InvalidSignature("bad timestamp");
        }
        if (Math.abs(System.currentTimeMillis() / 1000 - sentAt) > TOLERANCE_SECONDS) {
            throw new InvalidSignature("timestamp too far from now");
        }
        byte[] key = Base64.getDecoder().decode(secret.replaceFirst("^whsec_", ""));
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        mac.update((msgId + "." + timestamp + ".").getBytes(StandardCharsets.UTF_8));
        byte[] expected = mac.doFinal(body);
        // During a secret rotation there are several signatures, separated by spaces.
        for (String candidate : signatures.split(" ")) {
            String[] parts = candidate.split(",", 2);
            if (parts.length != 2 || !parts[0].equals("v1")) continue;
            try {
                if (MessageDigest.isEqual(Base64.getDecoder().decode(parts[1]), expected)) return;
            } catch (IllegalArgumentException notBase64) {
                // try the next one
            }
        }
        throw new InvalidSignature("no matching signature");
    }

    public static void main(String[] args) throws IOException {
        String secret = System.getenv("RELAYGATE_WEBHOOK_SECRET");
        if (secret == null) {
            System.err.println("set RELAYGATE_WEBHOOK_SECRET to the endpoint secret (whsec_...)");
            System.exit(2);
        }
        int port = Integer.parseInt(System.getenv().getOrDefault("PORT", "8000"));
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 0);
        server.createContext("/", (HttpExchange exchange) -> {
            byte[] body;
            try (InputStream in = exchange.getRequestBody()) {
                body = in.readAllBytes(); // the raw bytes: verify before parsing
            }
            String msgId = exchange.getRequestHeaders().getFirst("webhook-id");
            int status;
            try {
                verify(secret, body, msgId, exchange.getRequestHeaders().getFirst("webhook-timestamp"),
                        exchange.getRequestHeaders().getFirst("webhook-signature"));
                @SuppressWarnings("unchecked")
                Map<String, Object> event = (Map<String, Object>) Relaygate.Json.parse(new String(body, StandardCharsets.UTF_8));
                System.out.println("verified " + event.get("type") + " id=" + msgId); // de-duplicate by msgId
                status = 204;
            } catch (InvalidSignature | GeneralSecurityException e) {
                System.out.println("rejected: " + e.getMessage());
                status = 401;
            }
            exchange.sendResponseHeaders(status, -1);
            exchange.close();
        });
        server.start();
        System.out.println("listening on http://127.0.0.1:" + port);
    }
}
