// POST /v1/otp/verify: check the code the user typed. Exit status 0 only on "success".
// Usage: RELAYGATE_TOKEN=rgat_... node verify_otp.mjs otp_01H... 123456
const BASE_URL = process.env.RELAYGATE_BASE_URL ?? "http://127.0.0.1:8080/api";
const TOKEN = process.env.RELAYGATE_TOKEN;
const [otpId, code] = process.argv.slice(2);
if (!TOKEN || !otpId || !code) {
  console.error("usage: RELAYGATE_TOKEN=... node verify_otp.mjs <otp_id> <code>");
  process.exit(2);
}

try {
  const resp = await fetch(`${BASE_URL}/v1/otp/verify`, {
    method: "POST",
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify({ otp_id: otpId, code }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = await resp.json();
  if (!body.ok) {
    console.error(`error ${body.error.code}: ${body.error.message}`);
    process.exit(1);
  }
  console.log(
    `status=${body.status} attempts_left=${body.attempts_left}` + (body.reason ? ` reason=${body.reason}` : ""),
  );
  process.exit(body.status === "success" ? 0 : 1);
} catch (err) {
  console.error(`error: ${err.message}`);
  process.exit(1);
}
