"""``relaygate pairing-code``: a single-use code (and its QR) that pairs a relay phone."""

from __future__ import annotations

import argparse
import json
import sys

from gateway.cli.common import Command, Subcommands
from gateway.fleet.pairing import create_pairing_code, qr_payload
from gateway.timefmt import rfc3339
from store.accounts import account_by_id
from store.database import Conn

__all__ = ["COMMANDS", "add_commands"]


def add_commands(sub: Subcommands) -> None:
    """The ``pairing-code`` command."""
    pairing = sub.add_parser("pairing-code", help="create a pairing code (and show its QR) for a relay phone")
    pairing.add_argument("--account", required=True)
    pairing.add_argument("--public-url", help="API base URL the phone will use (RELAYGATE_PUBLIC_URL)")
    pairing.add_argument("--json", action="store_true", help="print {code, qr_payload, expires_at} as JSON")


async def _pairing_code(conn: Conn, args: argparse.Namespace) -> int:
    if await account_by_id(conn, account_id=args.account) is None:
        print(f"relaygate: no account {args.account}", file=sys.stderr)
        return 1
    settings = args.settings
    if args.public_url:
        settings = settings.replace(public_url=args.public_url)
    code = await create_pairing_code(conn, args.account)
    payload = qr_payload(code.code, settings.api_base_url())
    if args.json:
        print(json.dumps({"code": code.code, "qr_payload": payload, "expires_at": rfc3339(code.expires_at)}))
        return 0
    import segno

    print(f"pairing code: {code.code}   (single use, expires {rfc3339(code.expires_at)})")
    print(f"QR payload:   {payload}")
    segno.make(payload, error="m").terminal(compact=True)
    return 0


COMMANDS: dict[tuple[str, str], Command] = {("pairing-code", ""): _pairing_code}
