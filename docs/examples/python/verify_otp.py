"""POST /v1/otp/verify: check the code the user typed. Exit status 0 only on "success".

Usage: RELAYGATE_TOKEN=rgat_... python verify_otp.py otp_01H... 123456
"""

import os
import sys

import requests

BASE_URL = os.environ.get("RELAYGATE_BASE_URL", "http://127.0.0.1:8080/api")
TOKEN = os.environ["RELAYGATE_TOKEN"]


def main(otp_id: str, code: str) -> int:
    try:
        resp = requests.post(
            f"{BASE_URL}/v1/otp/verify",
            json={"otp_id": otp_id, "code": code},
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
        return 1
    line = f"status={body['status']} attempts_left={body['attempts_left']}"
    if body.get("reason"):
        line += f" reason={body['reason']}"
    print(line)
    return 0 if body["status"] == "success" else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: verify_otp.py <otp_id> <code>")
    sys.exit(main(sys.argv[1], sys.argv[2]))
