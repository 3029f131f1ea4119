"""What a send checks about its number before its commit, for many sends in one statement: is
the number opted out of the account's messages (the recipients directory), and which of the
account's messages went to it since the cap window's floor (``messages``). A
:class:`store.batched_read.BatchedRead` read function."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from store.database import Db

__all__ = ["NO_FACTS", "NumberFacts", "NumberKey", "number_facts"]

NumberKey = tuple[str, str, str | None]
"""(account id, E.164 number, id floor of the per-recipient cap window; None: the window is
not wanted, only the opt-out, and no message is read)."""


class NumberFacts(msgspec.Struct, frozen=True):
    """The directory's opt-out flag of a number and the account's messages to it since a floor."""

    opted_out: bool
    recent: tuple[str, ...]
    """Message ids, oldest first."""


NO_FACTS = NumberFacts(False, ())
"""A number the directory does not mark and the account did not send to since the floor."""

# Only the keys with a fact come back, by their position in the arrays. Each lookup is a
# correlated subquery, run once per key (OFFSET 0 keeps the filter from running them again);
# an EXISTS here was planned as a hash of every opted-out recipient, and planning took twice as
# long (PostgreSQL plans this statement at every call: a generic plan, made once, would be kept
# until the next ANALYZE, and a directory that grew meanwhile would be read the wrong way).
_NUMBER_FACTS = """
SELECT f.n, f.opted_out, f.recent FROM (
    SELECT v.n,
           coalesce((SELECT r.opted_out FROM recipients r
                     WHERE r.account_id = v.account_id AND r.phone = v.phone), false) AS opted_out,
           ARRAY (SELECT m.id FROM messages m  -- a NULL floor matches no message
                  WHERE m.account_id = v.account_id AND m.to_number = v.phone AND m.id >= v.floor
                  ORDER BY m.id LIMIT 100000) AS recent
    FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS v(account_id, phone, floor, n)
    OFFSET 0
) f
WHERE f.opted_out OR cardinality(f.recent) > 0
"""


async def number_facts(conn: Db, keys: Sequence[NumberKey]) -> dict[NumberKey, NumberFacts]:
    """The facts of each key that has any (the others are :data:`NO_FACTS`)."""
    rows = await conn.fetch(_NUMBER_FACTS, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys])
    return {keys[r[0] - 1]: NumberFacts(r[1], tuple(r[2])) for r in rows}
