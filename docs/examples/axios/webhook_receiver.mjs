// A tiny webhook receiver for the Axios examples: Axios is an HTTP client, so the receiving side
// is plain node:http plus node:crypto (the same as ../node/webhook_receiver.mjs). It verifies
// relaygate's Standard Webhooks signatures: 204 for a genuine event, 401 for anything else.
// Usage: RELAYGATE_WEBHOOK_SECRET=whsec_... PORT=8000 node webhook_receiver.mjs
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const SECRET = process.env.RELAYGATE_WEBHOOK_SECRET;
const PORT = Number(process.env.PORT ?? 8000);
const TOLERANCE_SECONDS = 5 * 60;
if (!SECRET) {
  console.error("set RELAYGATE_WEBHOOK_SECRET to the endpoint secret (whsec_...)");
  process.exit(2);
}

// Throws unless one of the "v1,<sig>" signatures matches and the timestamp is fresh.
export function verify(secret, rawBody, msgId, timestamp, signatures) {
  if (!msgId || !timestamp || !signatures) throw new Error("missing webhook headers");
  if (!/^\d+$/.test(timestamp)) throw new Error("bad timestamp");
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_SECONDS) {
    throw new Error("timestamp too far from now");
  }
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key)
    .update(`${msgId}.${timestamp}.`)
    .update(rawBody)
    .digest();
  // During a secret rotation there are several signatures, separated by spaces.
  for (const candidate of signatures.split(" ")) {
    const [version, signature] = candidate.split(",", 2);
    if (version !== "v1" || !signature) continue;
    const given = Buffer.from(signature, "base64");
    if (given.length === expected.length && timingSafeEqual(given, expected)) return;
  }
  throw new Error("no matching signature");
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const rawBody = Buffer.concat(chunks); // verify the bytes as received, before JSON.parse
    const msgId = req.headers["webhook-id"];
    try {
      verify(SECRET, rawBody, msgId, req.headers["webhook-timestamp"], req.headers["webhook-signature"]);
    } catch (err) {
      console.log(`rejected: ${err.message}`);
      res.writeHead(401).end();
      return;
    }
    const event = JSON.parse(rawBody.toString("utf8"));
    console.log(`verified ${event.type} id=${msgId}`); // de-duplicate by msgId: retries reuse it
    res.writeHead(204).end();
  });
});
server.listen(PORT, "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${PORT}`));
