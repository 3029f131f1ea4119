import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small relaygate API client on java.net.http only (JDK 11+): base URL and token from the
 * environment, a minimal JSON reader/writer (the JDK has none; in an application use Jackson or
 * Gson instead), and {@link ApiException} carrying our error code and message.
 */
public final class Relaygate {
    /** relaygate's error shape: {"ok": false, "error": {"code", "message", "details"}}. */
    public static final class ApiException extends Exception {
        public final int httpStatus;
        public final String code;
        public final Object details;

        ApiException(int httpStatus, String code, String message, Object details) {
            super(message);
            this.httpStatus = httpStatus;
            this.code = code;
            this.details = details;
        }
    }

    // HTTP/1.1: by default the JDK client offers an "Upgrade: h2c" on plain http:// URLs, and
    // servers without HTTP/2 (uvicorn among them) may then lose the request body.
    private static final HttpClient HTTP = HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5))
            .build();
    private final String baseUrl;
    private final String token;

    public Relaygate(String baseUrl, String token) {
        this.baseUrl = baseUrl;
        this.token = token;
    }

    /** RELAYGATE_BASE_URL (default http://127.0.0.1:8080/api) and RELAYGATE_TOKEN. */
    public static Relaygate fromEnv() {
        String base = System.getenv().getOrDefault("RELAYGATE_BASE_URL", "http://127.0.0.1:8080/api");
        return new Relaygate(base, System.getenv("RELAYGATE_TOKEN"));
    }

    public Map<String, Object> get(String path) throws IOException, InterruptedException, ApiException {
        return send("GET", path, null, Map.of());
    }

    public Map<String, Object> post(String path, Map<String, Object> body, Map<String, String> headers)
            throws IOException, InterruptedException, ApiException {
        return send("POST", path, body, headers);
    }

    public static String query(String name, String value) {
        return name + "=" + URLEncoder.encode(value, StandardCharsets.UTF_8);
    }

    @SuppressWarnings("unchecked")
    private Map<String, Object> send(String method, String path, Map<String, Object> body, Map<String, String> headers)
            throws IOException, InterruptedException, ApiException {
        HttpRequest.Builder req = HttpRequest.newBuilder(URI.create(baseUrl + path))
                .timeout(Duration.ofSeconds(15))
                .header("Accept", "application/json");
        if (token != null && !token.isEmpty()) {
            req.header("Authorization", "Bearer " + token);
        }
        headers.forEach(req::header);
        if (body != null) {
            req.header("Content-Type", "application/json");
            req.method(method, HttpRequest.BodyPublishers.ofString(Json.write(body)));
        } else {
            req.method(method, HttpRequest.BodyPublishers.noBody());
        }
        HttpResponse<String> resp = HTTP.send(req.build(), HttpResponse.BodyHandlers.ofString());
        Object parsed;
        try {
            parsed = Json.parse(resp.body());
        } catch (IllegalArgumentException e) {
            throw new ApiException(resp.statusCode(), "bad_response", "HTTP " + resp.statusCode() + ": " + resp.body(), null);
        }
        Map<String, Object> data = parsed instanceof Map ? (Map<String, Object>) parsed : Map.of();
        if (!Boolean.TRUE.equals(data.get("ok"))) {
            Map<String, Object> error = data.get("error") instanceof Map ? (Map<String, Object>) data.get("error") : Map.of();
            throw new ApiException(resp.statusCode(), String.valueOf(error.getOrDefault("code", "unknown")),
                    String.valueOf(error.getOrDefault("message", "HTTP " + resp.statusCode())), error.get("details"));
        }
        return data;
    }

    /** Prints "error <code>: <message>" (or the I/O error) to stderr and exits 1. */
    public static void exit(Exception e) {
        if (e instanceof ApiException api) {
            System.err.println("error " + api.code + ": " + api.getMessage());
            if (api.details != null) {
                System.err.println(Json.write(api.details));
            }
        } else {
            System.err.println("error: " + e);
        }
        System.exit(1);
    }

    /** Just enough JSON for these examples: objects, arrays, strings, numbers, booleans, null. */
    public static final class Json {
        private final String s;
        private int i;

        private Json(String s) {
            this.s = s;
        }

        public static Object parse(String text) {
            Json p = new Json(text);
            Object v = p.value();
            p.ws();
            if (p.i != p.s.length()) throw new IllegalArgumentException("trailing data");
            return v;
        }

        public static String write(Object v) {
            if (v == null) return "null";
            if (v instanceof String str) return quote(str);
            if (v instanceof Number || v instanceof Boolean) return v.toString();
            if (v instanceof Map<?, ?> m) {
                StringBuilder b = new StringBuilder("{");
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    if (b.length() > 1) b.append(',');
                    b.append(quote(String.valueOf(e.getKey()))).append(':').append(write(e.getValue()));
                }
                return b.append('}').toString();
            }
            if (v instanceof List<?> l) {
                StringBuilder b = new StringBuilder("[");
                for (Object o : l) {
                    if (b.length() > 1) b.append(',');
                    b.append(write(o));
                }
                return b.append(']').toString();
            }
            throw new IllegalArgumentException("cannot write " + v.getClass());
        }

        private static String quote(String str) {
            StringBuilder b = new StringBuilder("\"");
            for (char c : str.toCharArray()) {
                switch (c) {
                    case '"' -> b.append("\\\"");
                    case '\\' -> b.append("\\\\");
                    case '\n' -> b.append("\\n");
                    case '\r' -> b.append("\\r");
                    case '\t' -> b.append("\\t");
                    default -> {
                        if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                        else b.append(c);
                    }
                }
            }
            return b.append('"').toString();
        }

        private void ws() {
            while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++;
        }

        private char peek() {
            ws();
            if (i >= s.length()) throw new IllegalArgumentException("unexpected end");
            return s.charAt(i);
        }

        private Object value() {
            char c = peek();
            if (c == '{') {
                Map<String, Object> m = new LinkedHashMap<>();
                i++;
                if (peek() == '}') { i++; return m; }
                while (true) {
                    String k = string();
                    if (peek() != ':') throw new IllegalArgumentException("expected :");
                    i++;
                    m.put(k, value());
                    char n = peek();
                    i++;
                    if (n == '}') return m;
                    if (n != ',') throw new IllegalArgumentException("expected , or }");
                }
            }
            if (c == '[') {
                List<Object> l = new ArrayList<>();
                i++;
                if (peek() == ']') { i++; return l; }
                while (true) {
                    l.add(value());
                    char n = peek();
                    i++;
                    if (n == ']') return l;
                    if (n != ',') throw new IllegalArgumentException("expected , or ]");
                }
            }
            if (c == '"') return string();
            for (String lit : new String[] {"true", "false", "null"}) {
                if (s.startsWith(lit, i)) {
                    i += lit.length();
                    return lit.equals("null") ? null : Boolean.valueOf(lit);
                }
            }
            int start = i;
            while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
            if (start == i) throw new IllegalArgumentException("unexpected " + c);
            String num = s.substring(start, i);
            return num.matches("-?\\d+") ? (Object) Long.valueOf(num) : (Object) Double.valueOf(num);
        }

        private String string() {
            if (peek() != '"') throw new IllegalArgumentException("expected string");
            i++;
            StringBuilder b = new StringBuilder();
            while (true) {
                if (i >= s.length()) throw new IllegalArgumentException("unterminated string");
                char c = s.charAt(i++);
                if (c == '"') return b.toString();
                if (c != '\\') { b.append(c); continue; }
                char e = s.charAt(i++);
                switch (e) {
                    case 'n' -> b.append('\n');
                    case 'r' -> b.append('\r');
                    case 't' -> b.append('\t');
                    case 'b' -> b.append('\b');
                    case 'f' -> b.append('\f');
                    case 'u' -> { b.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; }
                    default -> b.append(e);
                }
            }
        }
    }
}
