// POST /v1/otp/send. Usage: RELAYGATE_TOKEN=rgat_... node send_otp.mjs +998901234567 [purpose]
import { api, fail } from "./client.mjs";

const [to, purpose = "login"] = process.argv.slice(2);
if (!to) {
  console.error("usage: node send_otp.mjs <to> [purpose]");
  process.exit(2);
}
try {
  const { data } = await api.post("/v1/otp/send", { to, purpose, expires_in_seconds: 300 });
  console.log(`otp_id=${data.otp_id} status=${data.status} expires_in_seconds=${data.expires_in_seconds}`);
} catch (err) {
  fail(err);
}
