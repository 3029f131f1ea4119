// GET /v1/health (no token): is the gateway up and its database reachable?
// Usage: node health.mjs   (Node 18+: fetch is built in)
const BASE_URL = process.env.RELAYGATE_BASE_URL ?? "http://127.0.0.1:8080/api";

try {
  const resp = await fetch(`${BASE_URL}/v1/health`, { signal: AbortSignal.timeout(10_000) });
  const body = await resp.json();
  if (!body.ok) {
    console.error(`error ${body.error?.code ?? resp.status}: ${body.error?.message ?? JSON.stringify(body)}`);
    process.exit(1);
  }
  console.log(`status=${body.status} database=${body.database} version=${body.version}`);
} catch (err) {
  console.error(`error: ${err.message}`);
  process.exit(1);
}
