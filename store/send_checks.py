"""What a send checks about its number before its commit, for many sends in one statement: is
the number opted out of the account's messages (the recipients directory), and which of the
account's messages went to it since the cap window's floor (``messages``). A
:class:`store.batched_read.BatchedRead` read function."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from store.database import Db

__all__ = ["NO_FACTS", "NumberFacts", "NumberKey", "number_facts"]

NumberKey = tuple[str, str, str]
"""(account id, E.164 number, id floor of the per-recipient cap window)."""


class NumberFacts(msgspec.Struct, frozen=True):
    """The directory's opt-out flag of a number and the account's messages to it since a floor."""

    opted_out: bool
    recent: tuple[str, ...]
    """Message ids, oldest first."""


NO_FACTS = NumberFacts(False, ())
"""A number the directory does not mark and the account did not send to since the floor."""

# The statement is the function relaygate_number_facts in schema.sql (planned once per connection).
_NUMBER_FACTS = "SELECT n, opted_out, recent FROM relaygate_number_facts($1::text[], $2::text[], $3::text[])"


async def number_facts(conn: Db, keys: Sequence[NumberKey]) -> dict[NumberKey, NumberFacts]:
    """The facts of each key that has any (the others are :data:`NO_FACTS`)."""
    rows = await conn.fetch(_NUMBER_FACTS, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys])
    return {keys[r[0] - 1]: NumberFacts(r[1], tuple(r[2])) for r in rows}
