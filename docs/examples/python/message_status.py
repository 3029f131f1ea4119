"""GET /v1/messages/status: where is my message?

Usage: RELAYGATE_TOKEN=rgat_... python message_status.py req_01H...
"""

import os
import sys

import requests

BASE_URL = os.environ.get("RELAYGATE_BASE_URL", "http://127.0.0.1:8080/api")
TOKEN = os.environ["RELAYGATE_TOKEN"]


def main(request_id: str) -> int:
    try:
        resp = requests.get(
            f"{BASE_URL}/v1/messages/status",
            params={"request_id": request_id},
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
    print(
        f"status={body['status']} attempts={body['attempts']} "
        f"device={body['device_name'] or '-'} failure_reason={body['failure_reason'] or '-'}"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: message_status.py <request_id>")
    sys.exit(main(sys.argv[1]))
