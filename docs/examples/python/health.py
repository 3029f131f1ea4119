"""GET /v1/health (no token): is the gateway up and its database reachable?

Usage: python health.py
"""

import os
import sys

import requests

BASE_URL = os.environ.get("RELAYGATE_BASE_URL", "http://127.0.0.1:8080/api")


def main() -> int:
    try:
        resp = requests.get(f"{BASE_URL}/v1/health", timeout=10)
        body = resp.json()
    except (requests.RequestException, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not body.get("ok"):
        error = body.get("error") or {}
        print(f"error {error.get('code', resp.status_code)}: {error.get('message', body)}", file=sys.stderr)
        return 1
    print(f"status={body['status']} database={body['database']} version={body['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
