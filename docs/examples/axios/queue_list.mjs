// POST /v1/recipient-lists/queue: every number of the list its own message.
// Usage: RELAYGATE_TOKEN=rgat_... node queue_list.mjs lst_01HV... "Hi {name}, our {city} shop is open"
import { randomUUID } from "node:crypto";
import { api, fail } from "./client.mjs";

const [listId, message] = process.argv.slice(2);
if (!listId || !message) {
  console.error("usage: node queue_list.mjs <list_id> <message>");
  process.exit(2);
}
try {
  const { data } = await api.post(
    "/v1/recipient-lists/queue",
    { list_id: listId, message },
    // A retry with the same key never queues the list twice; the answer comes once every item
    // is stored, so allow a big list a minute.
    { headers: { "Idempotency-Key": randomUUID() }, timeout: 60_000 },
  );
  console.log(`${data.status} batch_id=${data.batch_id} queued=${data.queued} skipped=${data.skipped_total}`);
  for (const s of data.skipped) console.log(`  skipped ${s.phone} (${s.reason})`);
} catch (err) {
  fail(err);
}
