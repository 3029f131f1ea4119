"""POST /v1/sms/send: queue one SMS.

Usage: RELAYGATE_TOKEN=rgat_... python send_sms.py +998901234567 "Your order #42 shipped"
"""

import os
import sys
import uuid

import requests

BASE_URL = os.environ.get("RELAYGATE_BASE_URL", "http://127.0.0.1:8080/api")
TOKEN = os.environ["RELAYGATE_TOKEN"]


def main(to: str, message: str) -> int:
    try:
        resp = requests.post(
            f"{BASE_URL}/v1/sms/send",
            json={"to": to, "message": message},
            headers={
                "Authorization": f"Bearer {TOKEN}",
                # Retrying with the same key never sends a second SMS.
                "Idempotency-Key": str(uuid.uuid4()),
            },
            timeout=15,
        )
        body = resp.json()
    except (requests.RequestException, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not body.get("ok"):
        error = body["error"]
        print(f"error {error['code']}: {error['message']}", file=sys.stderr)
        if error.get("details"):
            print(error["details"], file=sys.stderr)
        return 1
    print(f"{body['status']} request_id={body['request_id']}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: send_sms.py <to> <message>")
    sys.exit(main(sys.argv[1], sys.argv[2]))
