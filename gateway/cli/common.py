"""What the operator commands share: how a group registers its subcommands, and the database
connection each command runs with (schema applied first, as ``serve`` does)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import TypeAlias

from gateway.config import Settings
from gateway.runtime import resolve_database_url
from store.database import Conn, apply_schema, connect

__all__ = ["Command", "Subcommands", "with_database"]

Command = Callable[[Conn, argparse.Namespace], Awaitable[int]]
"""An operator command: runs on one connection, returns the exit code."""

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``ArgumentParser.add_subparsers()`` returns: where a group adds its commands."""


async def with_database(settings: Settings, args: argparse.Namespace, command: Command) -> int:
    """Run ``command`` on a connection to the configured database (embedded if none)."""
    conn = await connect(await resolve_database_url(settings))
    try:
        await apply_schema(conn)
        return await command(conn, args)
    finally:
        await conn.close()
