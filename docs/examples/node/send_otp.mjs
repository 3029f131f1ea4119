// POST /v1/otp/send: text a one-time code.
// Usage: RELAYGATE_TOKEN=rgat_... node send_otp.mjs +998901234567 [purpose]
const BASE_URL = process.env.RELAYGATE_BASE_URL ?? "http://127.0.0.1:8080/api";
const TOKEN = process.env.RELAYGATE_TOKEN;
const [to, purpose = "login"] = process.argv.slice(2);
if (!TOKEN || !to) {
  console.error("usage: RELAYGATE_TOKEN=... node send_otp.mjs <to> [purpose]");
  process.exit(2);
}

try {
  const resp = await fetch(`${BASE_URL}/v1/otp/send`, {
    method: "POST",
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify({ to, purpose, expires_in_seconds: 300 }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = await resp.json();
  if (!body.ok) {
    console.error(`error ${body.error.code}: ${body.error.message}`);
    if (body.error.code === "rate_limited") console.error(`retry after ${resp.headers.get("retry-after")} s`);
    process.exit(1);
  }
  console.log(`otp_id=${body.otp_id} status=${body.status} expires_in_seconds=${body.expires_in_seconds}`);
} catch (err) {
  console.error(`error: ${err.message}`);
  process.exit(1);
}
