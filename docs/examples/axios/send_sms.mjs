// POST /v1/sms/send. Usage: RELAYGATE_TOKEN=rgat_... node send_sms.mjs +998901234567 "Your order #42 shipped"
import { randomUUID } from "node:crypto";
import { api, fail } from "./client.mjs";

const [to, message] = process.argv.slice(2);
if (!to || !message) {
  console.error("usage: node send_sms.mjs <to> <message>");
  process.exit(2);
}
try {
  const { data } = await api.post(
    "/v1/sms/send",
    { to, message },
    { headers: { "Idempotency-Key": randomUUID() } }, // a retry with the same key sends no second SMS
  );
  console.log(`${data.status} request_id=${data.request_id}`);
} catch (err) {
  fail(err);
}
