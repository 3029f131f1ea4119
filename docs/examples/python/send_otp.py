"""POST /v1/otp/send: text a one-time code.

Usage: RELAYGATE_TOKEN=rgat_... python send_otp.py +998901234567 [purpose]
"""

import os
import sys

import requests

BASE_URL = os.environ.get("RELAYGATE_BASE_URL", "http://127.0.0.1:8080/api")
TOKEN = os.environ["RELAYGATE_TOKEN"]


def main(to: str, purpose: str) -> int:
    try:
        resp = requests.post(
            f"{BASE_URL}/v1/otp/send",
            json={"to": to, "purpose": purpose, "expires_in_seconds": 300},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=15,
        )
        body = resp.json()
    except (requests.RequestException, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not body.get("ok"):
        error = body["error"]
        print(f"error {error['code']}: {error['message']}", file=sys.stderr)
        if error["code"] == "rate_limited":
            print(f"retry after {resp.headers.get('Retry-After')} s", file=sys.stderr)
        return 1
    print(f"otp_id={body['otp_id']} status={body['status']} expires_in_seconds={body['expires_in_seconds']}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: send_otp.py <to> [purpose]")
    sys.exit(main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else "login"))
