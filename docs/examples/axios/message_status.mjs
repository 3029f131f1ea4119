// GET /v1/messages/status. Usage: RELAYGATE_TOKEN=rgat_... node message_status.mjs req_01H...
import { api, fail } from "./client.mjs";

const [requestId] = process.argv.slice(2);
if (!requestId) {
  console.error("usage: node message_status.mjs <request_id>");
  process.exit(2);
}
try {
  const { data } = await api.get("/v1/messages/status", { params: { request_id: requestId } });
  console.log(
    `status=${data.status} attempts=${data.attempts} device=${data.device_name ?? "-"} ` +
      `failure_reason=${data.failure_reason ?? "-"}`,
  );
} catch (err) {
  fail(err);
}
