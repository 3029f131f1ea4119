"""``relaygate recipients import|opt-out|opt-in``: the recipients directory from the shell."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import msgspec

from gateway.cli.common import Command, Subcommands
from gateway.errors import ApiError
from gateway.recipients.directory import is_opted_out, set_opt_out
from gateway.recipients.importer import CsvReader, RowError, import_file
from gateway.recipients.numbers import InvalidNumber, e164
from store.accounts import account_by_id
from store.database import Conn

__all__ = ["COMMANDS", "add_commands"]


def add_commands(sub: Subcommands) -> None:
    """The ``recipients`` group."""
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
    row = await account_by_id(conn, account_id=args.account)
    if row is None:
        print(f"relaygate: no account {args.account}", file=sys.stderr)
        return 1
    try:
        data = await asyncio.to_thread(Path(args.file).read_bytes)
        reader = CsvReader(data, row.default_region, max_rows=None)
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
    row = await account_by_id(conn, account_id=args.account)
    if row is None:
        print(f"relaygate: no account {args.account}", file=sys.stderr)
        return 1
    try:
        phone = e164(args.phone, row.default_region)
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


COMMANDS: dict[tuple[str, str], Command] = {
    ("recipients", "import"): _recipients_import,
    ("recipients", "opt-out"): _recipients_opt,
    ("recipients", "opt-in"): _recipients_opt,
}
