// POST /v1/recipient-lists/queue: queue a whole recipient list, every number its own message.
// Usage: RELAYGATE_TOKEN=rgat_... node queue_list.mjs lst_01HV... "Hi {name}, our {city} shop is open"
import { randomUUID } from "node:crypto";

const BASE_URL = process.env.RELAYGATE_BASE_URL ?? "http://127.0.0.1:8080/api";
const TOKEN = process.env.RELAYGATE_TOKEN;
const [listId, message] = process.argv.slice(2);
if (!TOKEN || !listId || !message) {
  console.error("usage: RELAYGATE_TOKEN=... node queue_list.mjs <list_id> <message>");
  process.exit(2);
}

try {
  const resp = await fetch(`${BASE_URL}/v1/recipient-lists/queue`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${TOKEN}`,
      "Content-Type": "application/json",
      "Idempotency-Key": randomUUID(), // a retry with the same key never queues the list twice
    },
    body: JSON.stringify({ list_id: listId, message }),
    signal: AbortSignal.timeout(60_000), // answered once every item is stored
  });
  const body = await resp.json();
  if (!body.ok) {
    console.error(`error ${body.error.code}: ${body.error.message}`);
    if (body.error.details) console.error(JSON.stringify(body.error.details));
    process.exit(1);
  }
  console.log(`${body.status} batch_id=${body.batch_id} queued=${body.queued} skipped=${body.skipped_total}`);
  for (const s of body.skipped) console.log(`  skipped ${s.phone} (${s.reason})`);
} catch (err) {
  console.error(`error: ${err.message}`);
  process.exit(1);
}
