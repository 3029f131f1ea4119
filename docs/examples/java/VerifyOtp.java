import java.util.Map;

/** POST /v1/otp/verify; exit status 0 only on "success". Usage: RELAYGATE_TOKEN=rgat_... java VerifyOtp otp_01H... 123456 */
public final class VerifyOtp {
    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: java VerifyOtp <otp_id> <code>");
            System.exit(2);
        }
        try {
            Map<String, Object> r = Relaygate.fromEnv().post("/v1/otp/verify", Map.of("otp_id", args[0], "code", args[1]), Map.of());
            String line = "status=" + r.get("status") + " attempts_left=" + r.get("attempts_left");
            if (r.get("reason") != null) {
                line += " reason=" + r.get("reason");
            }
            System.out.println(line);
            System.exit("success".equals(r.get("status")) ? 0 : 1);
        } catch (Exception e) {
            Relaygate.exit(e);
        }
    }
}
