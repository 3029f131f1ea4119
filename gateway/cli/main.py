"""The ``relaygate`` command: serve, and the operator commands that share its database.

    relaygate serve [--host H] [--http-port P] [--relay-port P] [--data-dir D]
    relaygate accounts create NAME [--expires YYYY-MM-DD] [--relay-mode auto|manual] [--json]
    relaygate accounts list [--json]
    relaygate accounts renew ID --expires YYYY-MM-DD | --no-expiry
    relaygate accounts show ID [--json]
    relaygate accounts update ID [--allow-number-types a,b] [--countries UZ,BD | --all-countries]
                                 [--otp-per-number-hour N] [--otp-per-number-day N]
                                 [--daily-send-limit N] [--monthly-send-limit N]
                                 [--per-recipient-hour-limit N] [--json]
    relaygate tokens create --account ID --scopes a,b [--name N] [--json]
    relaygate tokens list --account ID [--json]
    relaygate tokens revoke TOKEN_ID
    relaygate pairing-code --account ID [--json]
    relaygate recipients import FILE --account ID [--all-or-nothing] [--json]
    relaygate recipients opt-out|opt-in PHONE --account ID
    relaygate relay-sim --api-url URL --token TOKEN --devices N [--state-dir D] [--record FILE] ...
    relaygate demo

Flags override ``RELAYGATE_*`` environment variables (see :mod:`gateway.config`). Each command
group lives in its own module (:mod:`gateway.cli.serve`, :mod:`~gateway.cli.accounts`,
:mod:`~gateway.cli.tokens`, :mod:`~gateway.cli.pairing`, :mod:`~gateway.cli.recipients`); this
one builds the parser and dispatches.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import sys
from collections.abc import Sequence

import uvloop

from gateway.cli import accounts, pairing, recipients, tokens
from gateway.cli.common import Command, with_database
from gateway.cli.serve import add_listener_arguments, serve
from gateway.config import Settings, SettingsError
from gateway.logs import configure_logging
from gateway.sim import relay as relaysim
from gateway.sim.demo import run_demo

__all__ = ["main", "raise_open_files_limit"]

COMMANDS: dict[tuple[str, str], Command] = {
    **accounts.COMMANDS,
    **tokens.COMMANDS,
    **pairing.COMMANDS,
    **recipients.COMMANDS,
}
"""The operator commands, by ``(command, action)``; each runs on one database connection."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relaygate", description="Self-hosted SMS and OTP gateway.")
    parser.add_argument("--data-dir", help="data folder (RELAYGATE_DATA_DIR, default ./.relaygate)")
    parser.add_argument("--database-url", help="PostgreSQL URL (DATABASE_URL); default: embedded server")
    sub = parser.add_subparsers(dest="command", required=True)

    add_listener_arguments(sub.add_parser("serve", help="run the gateway"))
    accounts.add_commands(sub)
    tokens.add_commands(sub)
    pairing.add_commands(sub)
    recipients.add_commands(sub)

    sim = sub.add_parser("relay-sim", help="simulated relay phones speaking the real protocol")
    relaysim.add_arguments(sim)

    add_listener_arguments(
        sub.add_parser("demo", help="gateway on the embedded database with three simulated relays")
    )
    return parser


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
        return uvloop.run(serve(settings))
    if args.command == "relay-sim":
        configure_logging(level="warning", fmt=settings.log_format, stream=sys.stderr)
        return uvloop.run(relaysim.run_relay_sim(relaysim.options_from_args(args)))
    if args.command == "demo":
        configure_logging(level="warning", fmt=settings.log_format, stream=sys.stderr)
        return uvloop.run(run_demo(settings))
    configure_logging(level="warning", fmt=settings.log_format, stream=sys.stderr)
    args.settings = settings
    action = getattr(args, "action", "")
    return uvloop.run(with_database(settings, args, COMMANDS[(args.command, action)]))
