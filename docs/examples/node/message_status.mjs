// GET /v1/messages/status: where is my message?
// Usage: RELAYGATE_TOKEN=rgat_... node message_status.mjs req_01H...
const BASE_URL = process.env.RELAYGATE_BASE_URL ?? "http://127.0.0.1:8080/api";
const TOKEN = process.env.RELAYGATE_TOKEN;
const [requestId] = process.argv.slice(2);
if (!TOKEN || !requestId) {
  console.error("usage: RELAYGATE_TOKEN=... node message_status.mjs <request_id>");
  process.exit(2);
}

try {
  const url = `${BASE_URL}/v1/messages/status?${new URLSearchParams({ request_id: requestId })}`;
  const resp = await fetch(url, {
    headers: { Authorization: `Bearer ${TOKEN}` },
    signal: AbortSignal.timeout(15_000),
  });
  const body = await resp.json();
  if (!body.ok) {
    console.error(`error ${body.error.code}: ${body.error.message}`);
    process.exit(1);
  }
  console.log(
    `status=${body.status} attempts=${body.attempts} device=${body.device_name ?? "-"} ` +
      `failure_reason=${body.failure_reason ?? "-"}`,
  );
} catch (err) {
  console.error(`error: ${err.message}`);
  process.exit(1);
}
