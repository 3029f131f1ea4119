"""``relaygate accounts create|list|renew|show|update``: accounts and their destination policy."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import Any

import msgspec

from gateway.access.accounts import (
    CAP_FIELDS,
    Account,
    account_from_row,
    create_account,
    get_account,
    renew,
    update_caps,
    update_number_policy,
)
from gateway.cli.common import Command, Subcommands
from gateway.sending.number_policy import parse_countries, parse_number_types
from gateway.timefmt import rfc3339
from store.accounts import all_accounts
from store.database import Conn

__all__ = ["COMMANDS", "add_commands", "cap_changes", "number_policy_changes"]


def add_commands(sub: Subcommands) -> None:
    """The ``accounts`` group."""
    accounts = sub.add_parser("accounts", help="manage accounts").add_subparsers(dest="action", required=True)
    acc_create = accounts.add_parser("create", help="create an account and a token with every scope")
    acc_create.add_argument("name")
    acc_create.add_argument("--expires", type=date.fromisoformat, help="subscription end date YYYY-MM-DD")
    acc_create.add_argument("--relay-mode", choices=["auto", "manual"], default="auto")
    acc_create.add_argument("--region", help="default region for national numbers, e.g. US, UZ, BD")
    acc_create.add_argument("--json", action="store_true", help="print {account_id, token} as JSON")
    acc_list = accounts.add_parser("list", help="every account, one line each")
    acc_list.add_argument("--json", action="store_true", help="one JSON object per line")
    acc_renew = accounts.add_parser("renew", help="set the date the subscription is paid through")
    acc_renew.add_argument("account_id")
    renew_to = acc_renew.add_mutually_exclusive_group(required=True)
    renew_to.add_argument("--expires", type=date.fromisoformat, help="YYYY-MM-DD (end of that day, UTC)")
    renew_to.add_argument("--no-expiry", action="store_true", help="never expires")
    acc_show = accounts.add_parser("show", help="an account and its settings")
    acc_show.add_argument("account_id")
    acc_show.add_argument("--json", action="store_true", help="print the account as GET /v1/account shows it")
    acc_update = accounts.add_parser(
        "update", help="change an account's destination policy (running gateways see it within 2 s)"
    )
    acc_update.add_argument("account_id")
    acc_update.add_argument(
        "--allow-number-types",
        metavar="TYPES",
        help="refused-by-default number types to allow, e.g. premium_rate,shared_cost ('' = none)",
    )
    where = acc_update.add_mutually_exclusive_group()
    where.add_argument("--countries", metavar="CC,CC", help="only these destination countries (ISO codes)")
    where.add_argument("--all-countries", action="store_true", help="any destination country")
    acc_update.add_argument("--otp-per-number-hour", type=int, metavar="N", help="codes per number per hour")
    acc_update.add_argument("--otp-per-number-day", type=int, metavar="N", help="codes per number per 24 h")
    for flag, what in (
        ("--daily-send-limit", "messages accepted per UTC day (0: no cap)"),
        ("--monthly-send-limit", "messages accepted per UTC calendar month (0: no cap)"),
        ("--per-recipient-hour-limit", "messages to one number per rolling hour (0: the gateway default)"),
    ):
        acc_update.add_argument(flag, type=int, metavar="N", help=what)
    acc_update.add_argument("--json", action="store_true", help="print the updated account as JSON")


async def _accounts_create(conn: Conn, args: argparse.Namespace) -> int:
    name = args.name.strip()
    if not name or len(name) > 100:
        print("relaygate: account name must be 1-100 characters", file=sys.stderr)
        return 2
    account, token = await create_account(
        conn, name, expires=args.expires, relay_mode=args.relay_mode, default_region=args.region
    )
    if args.json:
        print(json.dumps({"account_id": account.id, "token": token}))
    else:
        print(f"account {account.id} ({account.name}) created")
        print(f"access token (shown once): {token}")
    return 0


def _print_account(account: Account, as_json: bool) -> None:
    if as_json:
        print(msgspec.json.encode(account).decode())
        return
    countries = ",".join(account.allowed_countries) or "all"
    print(f"account {account.id} ({account.name}) {account.status}, relay mode {account.relay_mode}")
    print(f"  default region:       {account.default_region or '-'}")
    expires = account.subscription_expires_at
    print(f"  subscription expires: {rfc3339(expires) if expires else 'never'}")
    print(f"  number types allowed: {','.join(account.allowed_number_types)}")
    print(f"  countries allowed:    {countries}")
    print(f"  OTP per number:       {account.otp_per_number_hour}/hour, {account.otp_per_number_day}/24 h")
    daily, monthly = account.daily_send_limit, account.monthly_send_limit
    per_recipient = account.per_recipient_hour_limit
    print(f"  send caps:            {daily or 'none'}/day, {monthly or 'none'}/month")
    print(f"  per recipient:        {per_recipient or 'gateway default'}/hour")


async def _accounts_list(conn: Conn, args: argparse.Namespace) -> int:
    for row in await all_accounts(conn):
        account = account_from_row(row)
        if args.json:
            print(msgspec.json.encode(account).decode())
        else:
            expires = account.subscription_expires_at
            until = rfc3339(expires) if expires else "no expiry"
            print(f"{account.id}  {account.status:9}  {account.relay_mode:6}  until {until}  {account.name}")
    return 0


async def _accounts_renew(conn: Conn, args: argparse.Namespace) -> int:
    account = await renew(conn, args.account_id, None if args.no_expiry else args.expires)
    if account is None:
        print(f"relaygate: no account {args.account_id}", file=sys.stderr)
        return 1
    _print_account(account, False)
    return 0


async def _accounts_show(conn: Conn, args: argparse.Namespace) -> int:
    account = await get_account(conn, args.account_id)
    if account is None:
        print(f"relaygate: no account {args.account_id}", file=sys.stderr)
        return 1
    _print_account(account, args.json)
    return 0


OTP_HOUR_RANGE = (1, 1000)

OTP_DAY_RANGE = (1, 10000)


def number_policy_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The settings ``accounts update`` is to change, checked; ValueError says what is wrong."""
    changes: dict[str, Any] = {}
    if args.allow_number_types is not None:
        changes["extra_number_types"] = parse_number_types(args.allow_number_types)
    if args.all_countries:
        changes["allowed_countries"] = []
    elif args.countries is not None:
        changes["allowed_countries"] = parse_countries(args.countries)
    for name, (low, high) in (("otp_per_number_hour", OTP_HOUR_RANGE), ("otp_per_number_day", OTP_DAY_RANGE)):
        value = getattr(args, name)
        if value is None:
            continue
        if not low <= value <= high:
            raise ValueError(f"--{name.replace('_', '-')} must be {low}-{high}")
        changes[name] = value
    if not changes and not any(getattr(args, name, None) is not None for name in CAP_FIELDS):
        raise ValueError("nothing to update (see relaygate accounts update --help)")
    return changes


CAP_RANGES = {
    "daily_send_limit": 100_000_000,
    "monthly_send_limit": 1_000_000_000,
    "per_recipient_hour_limit": 1_000_000,
}


def cap_changes(args: argparse.Namespace) -> dict[str, int | None]:
    """The sending caps ``accounts update`` is to change (0 → None); ValueError when out of range."""
    changes: dict[str, int | None] = {}
    for name, high in CAP_RANGES.items():
        value = getattr(args, name)
        if value is None:
            continue
        if not 0 <= value <= high:
            raise ValueError(f"--{name.replace('_', '-')} must be 0-{high}")
        changes[name] = value or None
    return changes


async def _accounts_update(conn: Conn, args: argparse.Namespace) -> int:
    try:
        changes = number_policy_changes(args)
        caps = cap_changes(args)
    except ValueError as exc:
        print(f"relaygate: {exc}", file=sys.stderr)
        return 2
    account = await update_number_policy(conn, args.account_id, **changes)
    if account is not None and caps:
        account = await update_caps(conn, args.account_id, caps)
    if account is None:
        print(f"relaygate: no account {args.account_id}", file=sys.stderr)
        return 1
    _print_account(account, args.json)
    return 0


COMMANDS: dict[tuple[str, str], Command] = {
    ("accounts", "create"): _accounts_create,
    ("accounts", "list"): _accounts_list,
    ("accounts", "renew"): _accounts_renew,
    ("accounts", "show"): _accounts_show,
    ("accounts", "update"): _accounts_update,
}
