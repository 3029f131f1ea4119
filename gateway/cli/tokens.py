"""``relaygate tokens create|list|revoke``: access tokens of an account."""

from __future__ import annotations

import argparse
import json
import sys

import msgspec

from gateway.access.accounts import create_token, revoke_token, token_infos
from gateway.access.scopes import ALL_SCOPES, parse_scopes
from gateway.cli.common import Command, Subcommands
from gateway.timefmt import rfc3339
from store.accounts import account_by_id
from store.database import Conn

__all__ = ["COMMANDS", "add_commands"]


def add_commands(sub: Subcommands) -> None:
    """The ``tokens`` group."""
    tokens = sub.add_parser("tokens", help="manage access tokens").add_subparsers(
        dest="action", required=True
    )
    tok_create = tokens.add_parser("create", help="create an access token")
    tok_create.add_argument("--account", required=True)
    tok_create.add_argument("--scopes", required=True, help=f"comma-separated, from: {','.join(ALL_SCOPES)}")
    tok_create.add_argument("--name", default="")
    tok_create.add_argument("--json", action="store_true")
    tok_list = tokens.add_parser("list", help="an account's tokens (never the tokens themselves)")
    tok_list.add_argument("--account", required=True)
    tok_list.add_argument("--json", action="store_true", help="one JSON object per line")
    tok_revoke = tokens.add_parser("revoke", help="revoke an access token")
    tok_revoke.add_argument("token_id")


async def _tokens_create(conn: Conn, args: argparse.Namespace) -> int:
    try:
        scopes = parse_scopes(args.scopes)
    except ValueError as exc:
        print(f"relaygate: {exc}", file=sys.stderr)
        return 2
    if await account_by_id(conn, account_id=args.account) is None:
        print(f"relaygate: no account {args.account}", file=sys.stderr)
        return 1
    info, token = await create_token(conn, args.account, scopes, name=args.name)
    if args.json:
        print(json.dumps({"token_id": info.id, "token": token, "scopes": scopes}))
    else:
        print(f"token {info.id} created with scopes {','.join(scopes)}")
        print(f"access token (shown once): {token}")
    return 0


async def _tokens_list(conn: Conn, args: argparse.Namespace) -> int:
    if await account_by_id(conn, account_id=args.account) is None:
        print(f"relaygate: no account {args.account}", file=sys.stderr)
        return 1
    for info in await token_infos(conn, args.account):
        if args.json:
            print(msgspec.json.encode(info).decode())
        else:
            state = f"revoked {rfc3339(info.revoked_at)}" if info.revoked_at else "active"
            print(f"{info.id}  {info.hint:12}  {state:28}  {','.join(info.scopes)}  {info.name}")
    return 0


async def _tokens_revoke(conn: Conn, args: argparse.Namespace) -> int:
    info = await revoke_token(conn, args.token_id, None)
    if info is None:
        print(f"relaygate: no token {args.token_id}", file=sys.stderr)
        return 1
    print(f"token {info.id} revoked")
    return 0


COMMANDS: dict[tuple[str, str], Command] = {
    ("tokens", "create"): _tokens_create,
    ("tokens", "list"): _tokens_list,
    ("tokens", "revoke"): _tokens_revoke,
}
