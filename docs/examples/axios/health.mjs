// GET /v1/health (no token). Usage: node health.mjs
import { api, fail } from "./client.mjs";

try {
  const { data } = await api.get("/v1/health");
  console.log(`status=${data.status} database=${data.database} version=${data.version}`);
} catch (err) {
  fail(err);
}
