"""The ``relaygate`` command: serve, and the operator commands that share its database.

    relaygate serve [--host H] [--http-port P] [--relay-port P] [--data-dir D]
    relaygate accounts create NAME [--expires YYYY-MM-DD] [--relay-mode auto|manual] [--json]
    relaygate accounts list [--json]
    relaygate accounts renew ID --expires YYYY-MM-DD | --no-expiry
    relaygate accounts show ID [--json]
    relaygate accounts update ID [--allow-number-types a,b] [--countries UZ,BD | --all-countries]
                                 [--otp-per-number-hour N] [--otp-per-number-day N] [--json]
    relaygate tokens create --account ID --scopes a,b [--name N] [--json]
    relaygate tokens list --account ID [--json]
    relaygate tokens revoke TOKEN_ID
    relaygate pairing-code --account ID [--json]
    relaygate recipients import FILE --account ID [--all-or-nothing] [--json]
    relaygate recipients opt-out|opt-in PHONE --account ID
    relaygate relay-sim --api-url URL --token TOKEN --devices N [--kind relay|smsgate] [--state-dir D] [--record FILE] ...
    relaygate demo

Flags override ``RELAYGATE_*`` environment variables (see :mod:`gateway.config`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import msgspec
import uvloop

from gateway.access.accounts import (
    Account,
    account_from_row,
    create_account,
    create_token,
    renew,
    revoke_token,
    token_from_row,
    update_number_policy,
)
from gateway.access.scopes import ALL_SCOPES, parse_scopes
from gateway.config import Settings, SettingsError
from gateway.errors import ApiError
from gateway.fleet.pairing import create_pairing_code, qr_payload
from gateway.logs import configure_logging
from gateway.recipients.directory import is_opted_out, set_opt_out
from gateway.recipients.importer import CsvReader, RowError, import_file
from gateway.recipients.numbers import InvalidNumber, e164
from gateway.runtime import Gateway, ListenError, resolve_database_url
from gateway.sending.number_policy import parse_countries, parse_number_types
from gateway.sim import relay as relaysim
from gateway.sim import smsgate
from gateway.sim.demo import run_demo
from gateway.timefmt import rfc3339
from store import queries as q
from store.database import Conn, apply_schema, connect

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relaygate", description="Self-hosted SMS and OTP gateway.")
    parser.add_argument("--data-dir", help="data folder (RELAYGATE_DATA_DIR, default ./.relaygate)")
    parser.add_argument("--database-url", help="PostgreSQL URL (DATABASE_URL); default: embedded server")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_listener_arguments(sub.add_parser("serve", help="run the gateway"))

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
    acc_update.add_argument("--json", action="store_true", help="print the updated account as JSON")

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

    pairing = sub.add_parser("pairing-code", help="create a pairing code (and show its QR) for a relay phone")
    pairing.add_argument("--account", required=True)
    pairing.add_argument("--public-url", help="API base URL the phone will use (RELAYGATE_PUBLIC_URL)")
    pairing.add_argument("--json", action="store_true", help="print {code, qr_payload, expires_at} as JSON")

    recipients = sub.add_parser("recipients", help="the recipients directory").add_subparsers(
        dest="action", required=True
    )
    rcp_import = recipients.add_parser(
        "import", help="import a CSV file (header: name,phone[,tags][,locale],...)"
    )
    rcp_import.add_argument("file", help="UTF-8 CSV file, with or without a BOM")
    rcp_import.add_argument("--account", required=True)
    rcp_import.add_argument("--all-or-nothing", action="store_true", help="import nothing if any row is bad")
    rcp_import.add_argument("--json", action="store_true", help="print the report as the API answers it")
    for action, what in (("opt-out", "stop list messages to a number"), ("opt-in", "undo an opt-out")):
        opt = recipients.add_parser(action, help=what)
        opt.add_argument("phone", help="the number (national numbers in the account's default region)")
        opt.add_argument("--account", required=True)

    sim = sub.add_parser("relay-sim", help="simulated relay phones speaking the real protocol")
    relaysim.add_arguments(sim)
    sim.add_argument(
        "--kind",
        choices=("relay", "smsgate"),
        default="relay",
        help="relay: WebSocket relays (docs/protocol.md); smsgate: the SMSGate app's contract (docs/phones.md)",
    )

    _add_listener_arguments(
        sub.add_parser("demo", help="gateway on the embedded database with three simulated relays")
    )
    return parser


def _add_listener_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="bind address (RELAYGATE_HOST, default 127.0.0.1)")
    parser.add_argument("--http-port", type=int, help="HTTP API port (RELAYGATE_HTTP_PORT, default 8080)")
    parser.add_argument(
        "--relay-port", type=int, help="relay WebSocket port (RELAYGATE_RELAY_PORT, default 8081)"
    )


def raise_open_files_limit() -> None:
    """Every relay is a socket: lift the soft limit on open files to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 1_048_576 if hard == resource.RLIM_INFINITY else hard
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    raise_open_files_limit()
    try:
        settings = Settings.from_env(
            data_dir=args.data_dir,
            database_url=args.database_url,
            host=getattr(args, "host", None),
            http_port=getattr(args, "http_port", None),
            relay_port=getattr(args, "relay_port", None),
        )
    except SettingsError as exc:
        print(f"relaygate: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        configure_logging(level=settings.log_level, fmt=settings.log_format)
        return uvloop.run(_serve(settings))
    if args.command == "relay-sim":
        configure_logging(level="warning", fmt=settings.log_format, stream=sys.stderr)
        if args.kind == "smsgate":
            return uvloop.run(smsgate.run_smsgate_sim(relaysim.options_from_args(args)))
        return uvloop.run(relaysim.run_relay_sim(relaysim.options_from_args(args)))
    if args.command == "demo":
        configure_logging(level="warning", fmt=settings.log_format, stream=sys.stderr)
        return uvloop.run(run_demo(settings))
    configure_logging(level="warning", fmt=settings.log_format, stream=sys.stderr)
    command: dict[tuple[str, str], Callable[[Conn, argparse.Namespace], Awaitable[int]]] = {
        ("accounts", "create"): _accounts_create,
        ("accounts", "list"): _accounts_list,
        ("accounts", "renew"): _accounts_renew,
        ("accounts", "show"): _accounts_show,
        ("tokens", "list"): _tokens_list,
        ("accounts", "update"): _accounts_update,
        ("tokens", "create"): _tokens_create,
        ("tokens", "revoke"): _tokens_revoke,
        ("pairing-code", ""): _pairing_code,
        ("recipients", "import"): _recipients_import,
        ("recipients", "opt-out"): _recipients_opt,
        ("recipients", "opt-in"): _recipients_opt,
    }
    if args.command == "pairing-code" and args.public_url:
        settings = settings.replace(public_url=args.public_url)
    args.settings = settings
    action = getattr(args, "action", "")
    return uvloop.run(_with_database(settings, args, command[(args.command, action)]))


async def _serve(settings: Settings) -> int:
    gateway = Gateway(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, gateway.request_stop)
    try:
        await gateway.start()
        await gateway.wait()
    except ListenError as exc:
        print(f"relaygate: {exc}", file=sys.stderr)
        return 2
    finally:
        await gateway.stop()
    return 1 if gateway.supervisor.failure is not None else 0


async def _with_database(
    settings: Settings,
    args: argparse.Namespace,
    command: Callable[[Conn, argparse.Namespace], Awaitable[int]],
) -> int:
    conn = await connect(await resolve_database_url(settings))
    try:
        await apply_schema(conn)
        return await command(conn, args)
    finally:
        await conn.close()


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


async def _accounts_list(conn: Conn, args: argparse.Namespace) -> int:
    for row in await conn.fetch(q.ACCOUNT_LIST):
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


async def _tokens_list(conn: Conn, args: argparse.Namespace) -> int:
    if await conn.fetchrow(q.ACCOUNT_BY_ID, args.account) is None:
        print(f"relaygate: no account {args.account}", file=sys.stderr)
        return 1
    for row in await conn.fetch(q.TOKEN_LIST, args.account, "", 10_000):
        info = token_from_row(row)
        if args.json:
            print(msgspec.json.encode(info).decode())
        else:
            state = f"revoked {rfc3339(info.revoked_at)}" if info.revoked_at else "active"
            print(f"{info.id}  {info.hint:12}  {state:28}  {','.join(info.scopes)}  {info.name}")
    return 0


async def _accounts_show(conn: Conn, args: argparse.Namespace) -> int:
    row = await conn.fetchrow(q.ACCOUNT_BY_ID, args.account_id)
    if row is None:
        print(f"relaygate: no account {args.account_id}", file=sys.stderr)
        return 1
    _print_account(account_from_row(row), args.json)
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
    if not changes:
        raise ValueError("nothing to update (see relaygate accounts update --help)")
    return changes


async def _accounts_update(conn: Conn, args: argparse.Namespace) -> int:
    try:
        changes = number_policy_changes(args)
    except ValueError as exc:
        print(f"relaygate: {exc}", file=sys.stderr)
        return 2
    account = await update_number_policy(conn, args.account_id, **changes)
    if account is None:
        print(f"relaygate: no account {args.account_id}", file=sys.stderr)
        return 1
    _print_account(account, args.json)
    return 0


async def _tokens_create(conn: Conn, args: argparse.Namespace) -> int:
    try:
        scopes = parse_scopes(args.scopes)
    except ValueError as exc:
        print(f"relaygate: {exc}", file=sys.stderr)
        return 2
    if await conn.fetchrow(q.ACCOUNT_BY_ID, args.account) is None:
        print(f"relaygate: no account {args.account}", file=sys.stderr)
        return 1
    info, token = await create_token(conn, args.account, scopes, name=args.name)
    if args.json:
        print(json.dumps({"token_id": info.id, "token": token, "scopes": scopes}))
    else:
        print(f"token {info.id} created with scopes {','.join(scopes)}")
        print(f"access token (shown once): {token}")
    return 0


async def _tokens_revoke(conn: Conn, args: argparse.Namespace) -> int:
    info = await revoke_token(conn, args.token_id, None)
    if info is None:
        print(f"relaygate: no token {args.token_id}", file=sys.stderr)
        return 1
    print(f"token {info.id} revoked")
    return 0


async def _pairing_code(conn: Conn, args: argparse.Namespace) -> int:
    if await conn.fetchrow(q.ACCOUNT_BY_ID, args.account) is None:
        print(f"relaygate: no account {args.account}", file=sys.stderr)
        return 1
    code = await create_pairing_code(conn, args.account)
    payload = qr_payload(code.code, args.settings.api_base_url())
    if args.json:
        print(json.dumps({"code": code.code, "qr_payload": payload, "expires_at": rfc3339(code.expires_at)}))
        return 0
    import segno

    print(f"pairing code: {code.code}   (single use, expires {rfc3339(code.expires_at)})")
    print(f"QR payload:   {payload}")
    segno.make(payload, error="m").terminal(compact=True)
    return 0


IMPORT_CHUNK_ROWS = 5_000


def _progress_bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    end = "\n" if done >= total else ""
    print(
        f"\r  [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} lines",
        end=end,
        file=sys.stderr,
        flush=True,
    )


async def _recipients_import(conn: Conn, args: argparse.Namespace) -> int:
    row = await conn.fetchrow(q.ACCOUNT_BY_ID, args.account)
    if row is None:
        print(f"relaygate: no account {args.account}", file=sys.stderr)
        return 1
    try:
        data = await asyncio.to_thread(Path(args.file).read_bytes)
        reader = CsvReader(data, row["default_region"], max_rows=None)
        report = await import_file(
            conn,
            args.account,
            reader,
            all_or_nothing=args.all_or_nothing,
            chunk_rows=IMPORT_CHUNK_ROWS,
            progress=_progress_bar,
        )
    except OSError as exc:
        print(f"relaygate: {exc}", file=sys.stderr)
        return 2
    except ApiError as exc:
        if exc.details.get("reason") == "rows_refused":
            _print_row_errors(reader.report.errors)
            print(f"relaygate: {exc.message}", file=sys.stderr)
            return 1
        print(f"relaygate: {args.file}: {exc.message} {json.dumps(exc.details)}", file=sys.stderr)
        return 2 if exc.details.get("reason") == "invalid_csv" else 1
    if args.json:
        print(msgspec.json.encode(report).decode())
        return 0
    _print_row_errors(report.errors)
    print(
        f"{report.imported} imported, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.errors_total} refused"
    )
    return 0


def _print_row_errors(errors: list[RowError]) -> None:
    for error in errors[:20]:
        print(f"  line {error.line}: {error.reason}", file=sys.stderr)
    if len(errors) > 20:
        print(f"  ... and {len(errors) - 20} more", file=sys.stderr)


async def _recipients_opt(conn: Conn, args: argparse.Namespace) -> int:
    row = await conn.fetchrow(q.ACCOUNT_BY_ID, args.account)
    if row is None:
        print(f"relaygate: no account {args.account}", file=sys.stderr)
        return 1
    try:
        phone = e164(args.phone, row["default_region"])
    except InvalidNumber as exc:
        print(f"relaygate: {args.phone}: {exc}", file=sys.stderr)
        return 2
    opted_out = args.action == "opt-out"
    if not opted_out and not await is_opted_out(conn, args.account, phone):
        print(f"{phone} is not opted out")
        return 0
    recipient = await set_opt_out(conn, args.account, phone, opted_out)
    print(f"{recipient.phone} ({recipient.id}) {'opted out' if opted_out else 'opted back in'}")
    return 0
