"""A tiny webhook receiver (standard library only) that verifies relaygate's Standard Webhooks
signatures: 204 for a genuine event, 401 for anything else.

Usage: RELAYGATE_WEBHOOK_SECRET=whsec_... PORT=8000 python webhook_receiver.py
(or `pip install standardwebhooks` and call ``Webhook(secret).verify(body, headers)``).
"""

import base64
import hashlib
import hmac
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ["RELAYGATE_WEBHOOK_SECRET"]
PORT = int(os.environ.get("PORT", "8000"))
TOLERANCE_SECONDS = 5 * 60


class InvalidSignature(Exception):
    pass


def verify(secret: str, body: bytes, msg_id: str, timestamp: str, signatures: str) -> None:
    """Raise InvalidSignature unless one of the ``v1,`` signatures matches and the time is fresh."""
    if not (msg_id and timestamp and signatures):
        raise InvalidSignature("missing webhook headers")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise InvalidSignature("bad timestamp") from None
    if abs(time.time() - sent_at) > TOLERANCE_SECONDS:
        raise InvalidSignature("timestamp too far from now")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # During a secret rotation there are several signatures, separated by spaces.
    for candidate in signatures.split():
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return
    raise InvalidSignature("no matching signature")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        msg_id = self.headers.get("webhook-id", "")
        try:
            verify(
                SECRET,
                body,
                msg_id,
                self.headers.get("webhook-timestamp", ""),
                self.headers.get("webhook-signature", ""),
            )
        except InvalidSignature as exc:
            print(f"rejected: {exc}", flush=True)
            self.send_response(401)
            self.end_headers()
            return
        event = json.loads(body)
        # De-duplicate by msg_id: retries carry the same webhook-id.
        print(f"verified {event['type']} id={msg_id}", flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep stdout for the events


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print(f"listening on http://127.0.0.1:{PORT}", flush=True)
    server.serve_forever()
