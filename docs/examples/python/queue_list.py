"""POST /v1/recipient-lists/queue: queue a whole recipient list, every number its own message.

Usage: RELAYGATE_TOKEN=rgat_... python queue_list.py lst_01HV... "Hi {name}, our {city} shop is open"
"""

import os
import sys
import uuid

import requests

BASE_URL = os.environ.get("RELAYGATE_BASE_URL", "http://127.0.0.1:8080/api")
TOKEN = os.environ["RELAYGATE_TOKEN"]


def main(list_id: str, message: str) -> int:
    try:
        resp = requests.post(
            f"{BASE_URL}/v1/recipient-lists/queue",
            json={"list_id": list_id, "message": message},
            headers={
                "Authorization": f"Bearer {TOKEN}",
                # Retrying with the same key never queues the list twice.
                "Idempotency-Key": str(uuid.uuid4()),
            },
            timeout=60,  # answered once every item is stored: a big list takes a second or two
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
    print(
        f"{body['status']} batch_id={body['batch_id']} queued={body['queued']} skipped={body['skipped_total']}"
    )
    for skipped in body["skipped"]:
        print(f"  skipped {skipped['phone']} ({skipped['reason']})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: queue_list.py <list_id> <message>")
    sys.exit(main(sys.argv[1], sys.argv[2]))
