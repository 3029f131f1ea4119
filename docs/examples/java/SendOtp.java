import java.util.Map;

/** POST /v1/otp/send. Usage: RELAYGATE_TOKEN=rgat_... java SendOtp +998901234567 [purpose] */
public final class SendOtp {
    public static void main(String[] args) {
        if (args.length < 1 || args.length > 2) {
            System.err.println("usage: java SendOtp <to> [purpose]");
            System.exit(2);
        }
        try {
            Map<String, Object> otp = Relaygate.fromEnv().post(
                    "/v1/otp/send",
                    Map.of("to", args[0], "purpose", args.length == 2 ? args[1] : "login", "expires_in_seconds", 300),
                    Map.of());
            System.out.println("otp_id=" + otp.get("otp_id") + " status=" + otp.get("status")
                    + " expires_in_seconds=" + otp.get("expires_in_seconds"));
        } catch (Exception e) {
            Relaygate.exit(e);
        }
    }
}
