// POST /v1/sms/send: queue one SMS.
// Usage: RELAYGATE_TOKEN=rgat_... node send_sms.mjs +998901234567 "Your order #42 shipped"
import { randomUUID } from "node:crypto";

const BASE_URL = process.env.RELAYGATE_BASE_URL ?? "http://127.0.0.1:8080/api";
const TOKEN = process.env.RELAYGATE_TOKEN;
const [to, message] = process.argv.slice(2);
if (!TOKEN || !to || !message) {
  console.error("usage: RELAYGATE_TOKEN=... node send_sms.mjs <to> <message>");
  process.exit(2);
}

try {
  const resp = await fetch(`${BASE_URL}/v1/sms/send`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${TOKEN}`,
      "Content-Type": "application/json",
      "Idempotency-Key": randomUUID(), // a retry with the same key never sends a second SMS
    },
    body: JSON.stringify({ to, message }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = await resp.json();
  if (!body.ok) {
    console.error(`error ${body.error.code}: ${body.error.message}`);
    if (body.error.details) console.error(JSON.stringify(body.error.details));
    process.exit(1);
  }
  console.log(`${body.status} request_id=${body.request_id}`);
} catch (err) {
  console.error(`error: ${err.message}`);
  process.exit(1);
}
