// One Axios instance for the relaygate API: base URL and token from the environment, and an
// error printer for relaygate's error shape {"ok": false, "error": {"code", "message", "details"}}.
import axios from "axios";

export const api = axios.create({
  baseURL: process.env.RELAYGATE_BASE_URL ?? "http://127.0.0.1:8080/api",
  timeout: 15_000,
  headers: process.env.RELAYGATE_TOKEN ? { Authorization: `Bearer ${process.env.RELAYGATE_TOKEN}` } : {},
});

// Print what went wrong and exit 1: our error code and message, or the network error.
export function fail(err) {
  const error = err.response?.data?.error;
  if (error) {
    console.error(`error ${error.code}: ${error.message}`);
    if (error.details) console.error(JSON.stringify(error.details));
  } else {
    console.error(`error: ${err.message}`);
  }
  process.exit(1);
}
