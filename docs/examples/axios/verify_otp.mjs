// POST /v1/otp/verify; exit status 0 only on "success".
// Usage: RELAYGATE_TOKEN=rgat_... node verify_otp.mjs otp_01H... 123456
import { api, fail } from "./client.mjs";

const [otpId, code] = process.argv.slice(2);
if (!otpId || !code) {
  console.error("usage: node verify_otp.mjs <otp_id> <code>");
  process.exit(2);
}
try {
  const { data } = await api.post("/v1/otp/verify", { otp_id: otpId, code });
  console.log(
    `status=${data.status} attempts_left=${data.attempts_left}` + (data.reason ? ` reason=${data.reason}` : ""),
  );
  process.exit(data.status === "success" ? 0 : 1);
} catch (err) {
  fail(err);
}
