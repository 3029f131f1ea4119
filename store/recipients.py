"""The recipients directory and its CSV import: the SQL and the typed functions that run it
(recipient lists are :mod:`store.lists`).

Every function is scoped to one account where the row belongs to one. ``metadata`` (jsonb)
travels as JSON text (``::text`` both ways) and is encoded and decoded here with msgspec, so
these functions work the same with or without a jsonb codec on the connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from store.database import Conn, Db

__all__ = [
    "COLUMNS",
    "IMPORT_COLUMNS",
    "ImportCounts",
    "RecipientRow",
    "analyze_after_import",
    "count",
    "delete",
    "ensure_phones",
    "get",
    "get_for_update",
    "id_by_phone",
    "ids_by_phones",
    "import_rows",
    "insert",
    "is_opted_out",
    "owned_ids",
    "recipient_row",
    "search",
    "set_all",
    "set_opt_out",
]


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


class RecipientRow(msgspec.Struct, frozen=True, kw_only=True):
    """One row of ``recipients`` as the API shows it (never the search columns)."""

    id: str
    name: str
    phone: str
    tags: list[str]
    locale: str | None
    metadata: dict[str, Any]
    opted_out: bool
    created_at: datetime
    updated_at: datetime


class ImportCounts(msgspec.Struct, frozen=True, kw_only=True):
    """What one upsert of imported rows did."""

    imported: int
    """Rows inserted."""
    updated: int
    """Rows that existed and changed (the others were unchanged)."""


COLUMNS = "id, name, phone, tags, locale, metadata::text AS metadata, opted_out, created_at, updated_at"


def recipient_row(r: Any) -> RecipientRow:
    return RecipientRow(
        id=r[0],
        name=r[1],
        phone=r[2],
        tags=list(r[3]),
        locale=r[4],
        metadata=_decode(r[5]),
        opted_out=r[6],
        created_at=r[7],
        updated_at=r[8],
    )


def _recipient_or_none(r: Any) -> RecipientRow | None:
    return None if r is None else recipient_row(r)


# --- the directory ----------------------------------------------------------------------------

_COUNT = "SELECT count(*) FROM recipients WHERE account_id = $1"
# No row when the number is already in the directory.
_INSERT = f"""
INSERT INTO recipients (id, account_id, name, phone, tags, locale, metadata, opted_out, name_key, search_grams)
VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9, $10)
ON CONFLICT (account_id, phone) DO NOTHING
RETURNING {COLUMNS}
"""
_GET = f"SELECT {COLUMNS} FROM recipients WHERE id = $1 AND account_id = $2"
_GET_FOR_UPDATE = f"SELECT {COLUMNS} FROM recipients WHERE id = $1 AND account_id = $2 FOR UPDATE"
_ID_BY_PHONE = "SELECT id FROM recipients WHERE account_id = $1 AND phone = $2"
_OPTED_OUT = "SELECT opted_out FROM recipients WHERE account_id = $1 AND phone = $2"
# Every column a PATCH may change, set at once (the caller merged the old row and the change).
_SET = f"""
UPDATE recipients SET name = $3, phone = $4, tags = $5, locale = $6, metadata = $7::text::jsonb,
                      opted_out = $8, name_key = $9, search_grams = $10, updated_at = now()
WHERE id = $1 AND account_id = $2
RETURNING {COLUMNS}
"""
_DELETE = "DELETE FROM recipients WHERE id = $1 AND account_id = $2 RETURNING id"
# An unknown number is added (empty name) so the opt-out holds.
_SET_OPT_OUT = f"""
INSERT INTO recipients (id, account_id, name, phone, opted_out, name_key, search_grams)
VALUES ($1, $2, '', $3, $4, '', $5)
ON CONFLICT (account_id, phone) DO UPDATE SET opted_out = EXCLUDED.opted_out, updated_at = now()
RETURNING {COLUMNS}
"""
_IDS_OWNED = "SELECT id FROM recipients WHERE account_id = $1 AND id = ANY($2::text[])"
# $4: each number's search grams joined by spaces.
_ENSURE_PHONES = """
INSERT INTO recipients (id, account_id, name, phone, name_key, search_grams)
SELECT g.id, $1, '', g.phone, '', string_to_array(g.grams, ' ')
FROM unnest($2::text[], $3::text[], $4::text[]) AS g (id, phone, grams)
ON CONFLICT (account_id, phone) DO NOTHING
"""
_IDS_BY_PHONES = "SELECT id FROM recipients WHERE account_id = $1 AND phone = ANY($2::text[])"


async def count(db: Db, *, account_id: str) -> int:
    """Recipients in the account's directory."""
    return int(await db.fetchval(_COUNT, account_id))


async def insert(
    db: Db,
    *,
    id: str,
    account_id: str,
    name: str,
    phone: str,
    tags: list[str],
    locale: str | None,
    metadata: dict[str, Any],
    opted_out: bool,
    name_key: str,
    search_grams: list[str],
) -> RecipientRow | None:
    """Add a recipient; None when the account's directory already holds the number."""
    row = await db.fetchrow(
        _INSERT,
        id,
        account_id,
        name,
        phone,
        tags,
        locale,
        _encode(metadata).decode(),
        opted_out,
        name_key,
        search_grams,
    )
    return _recipient_or_none(row)


async def get(db: Db, *, account_id: str, recipient_id: str) -> RecipientRow | None:
    """One recipient of the account."""
    return _recipient_or_none(await db.fetchrow(_GET, recipient_id, account_id))


async def get_for_update(conn: Conn, *, account_id: str, recipient_id: str) -> RecipientRow | None:
    """One recipient of the account, locked until the caller's transaction ends."""
    return _recipient_or_none(await conn.fetchrow(_GET_FOR_UPDATE, recipient_id, account_id))


async def id_by_phone(db: Db, *, account_id: str, phone: str) -> str | None:
    """The id of the account's recipient with this number (E.164)."""
    found: str | None = await db.fetchval(_ID_BY_PHONE, account_id, phone)
    return found


async def is_opted_out(db: Db, *, account_id: str, phone: str) -> bool:
    """Whether the account's directory marks this number (E.164) as opted out."""
    return bool(await db.fetchval(_OPTED_OUT, account_id, phone))


async def set_all(
    conn: Conn,
    *,
    account_id: str,
    recipient_id: str,
    name: str,
    phone: str,
    tags: list[str],
    locale: str | None,
    metadata: dict[str, Any],
    opted_out: bool,
    name_key: str,
    search_grams: list[str],
) -> RecipientRow | None:
    """Write every changeable column of one recipient; ``asyncpg.UniqueViolationError`` when
    the number is taken."""
    row = await conn.fetchrow(
        _SET,
        recipient_id,
        account_id,
        name,
        phone,
        tags,
        locale,
        _encode(metadata).decode(),
        opted_out,
        name_key,
        search_grams,
    )
    return _recipient_or_none(row)


async def delete(db: Db, *, account_id: str, recipient_id: str) -> bool:
    """Remove a recipient (and its list memberships); False when there was none."""
    return await db.fetchval(_DELETE, recipient_id, account_id) is not None


async def set_opt_out(
    db: Db, *, new_id: str, account_id: str, phone: str, opted_out: bool, search_grams: list[str]
) -> RecipientRow:
    """Mark a number opted out or back in, adding it (id ``new_id``, empty name) if unknown."""
    row = await db.fetchrow(_SET_OPT_OUT, new_id, account_id, phone, opted_out, search_grams)
    return recipient_row(row)


async def owned_ids(db: Db, *, account_id: str, recipient_ids: list[str]) -> set[str]:
    """Those of ``recipient_ids`` that are the account's."""
    return {r[0] for r in await db.fetch(_IDS_OWNED, account_id, recipient_ids)}


async def ensure_phones(
    conn: Conn, *, account_id: str, new_ids: list[str], phones: list[str], grams: list[str]
) -> None:
    """Add the numbers not yet in the directory (empty name); ``grams`` are each number's
    search grams joined by spaces, ``new_ids`` the ids to give them."""
    await conn.execute(_ENSURE_PHONES, account_id, new_ids, phones, grams)


async def ids_by_phones(db: Db, *, account_id: str, phones: list[str]) -> list[str]:
    """Ids of the account's recipients with these numbers."""
    return [r[0] for r in await db.fetch(_IDS_BY_PHONES, account_id, phones)]


# --- search -----------------------------------------------------------------------------------

# Searches are planned for their actual values (a generic plan cannot know that a tag or a
# 3-gram is rare).
_CUSTOM_PLAN = "SET LOCAL plan_cache_mode = force_custom_plan"
SEARCH_WALK_ROWS = 5000
"""Rows a search first reads in id order, checking the filters on each, before it asks the
indexes: enough to fill a page of 50 when 1 row in 100 or more matches."""


def _search_sql(
    *, grams: bool, name_like: bool, phone_like: bool, tag: bool, opted_out: bool, walk: bool
) -> str:
    """The directory search for the filters in use ($1 account, $2 cursor, $3 limit, then one
    parameter per filter in this order: grams, name pattern, phone pattern, tag, opted_out).

    ``walk``: the filters checked on the next ``SEARCH_WALK_ROWS`` rows in id order only (cheap
    whatever the filters, complete when it fills the page). Otherwise every matching row is
    found through the indexes, then sorted: the inner query has no ``LIMIT`` (and an ``OFFSET
    0`` keeps it apart), so the planner cannot choose an id-order walk through the whole
    directory for a filter it wrongly thinks common (a tag nobody has is estimated at 500 rows).
    One statement per combination, so that each plan can use the index its filter needs.
    """
    where = []
    filters = (
        (grams, "search_grams @> ${}::text[]"),
        (name_like, "name_key LIKE ${}"),
        (phone_like, "phone LIKE ${}"),
        (tag, "tags @> ARRAY[${}::text]"),
        (opted_out, "opted_out = ${}"),
    )
    n = 3
    for used, clause in filters:
        if used:
            n += 1
            where.append(clause.format(n))
    if walk:
        window = (
            f"SELECT * FROM recipients WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT {SEARCH_WALK_ROWS}"
        )
        return f"SELECT {COLUMNS} FROM ({window}) w WHERE {' AND '.join(where)} ORDER BY id LIMIT $3"
    where = ["account_id = $1", "id > $2", *where]
    return (
        f"SELECT * FROM (SELECT {COLUMNS} FROM recipients WHERE {' AND '.join(where)} OFFSET 0) found "
        "ORDER BY id LIMIT $3"
    )


_PAGE = f"SELECT {COLUMNS} FROM recipients WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3"


@contextlib.asynccontextmanager
async def _connection(db: Db) -> AsyncIterator[Conn]:
    """A connection: ``db`` itself, or one from it when it is the pool."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            yield conn
    else:
        yield db


async def search(
    db: Db,
    *,
    account_id: str,
    cursor: str,
    limit: int,
    grams: list[str] | None = None,
    name_like: str | None = None,
    phone_like: str | None = None,
    tag: str | None = None,
    opted_out: bool | None = None,
) -> list[RecipientRow]:
    """Up to ``limit`` of the account's recipients after ``cursor`` (id order) that hold every
    gram of ``grams``, whose folded name is ``LIKE name_like``, whose number is ``LIKE
    phone_like``, that carry ``tag`` and have this ``opted_out``; None: no such filter.

    Two steps, so that neither common nor rare matches are slow: the next rows in id order
    are checked first (a common match fills the page there); only when they do not, the
    indexes find the (then few) matching rows."""
    filters = [a for a in (grams, name_like, phone_like, tag, opted_out) if a is not None]
    if not filters:
        return [recipient_row(r) for r in await db.fetch(_PAGE, account_id, cursor, limit)]
    used = {
        "grams": grams is not None,
        "name_like": name_like is not None,
        "phone_like": phone_like is not None,
        "tag": tag is not None,
        "opted_out": opted_out is not None,
    }
    args = [account_id, cursor, limit, *filters]
    async with _connection(db) as conn, conn.transaction():
        await conn.execute(_CUSTOM_PLAN)
        rows = await conn.fetch(_search_sql(**used, walk=True), *args)
        if len(rows) < limit:
            rows = await conn.fetch(_search_sql(**used, walk=False), *args)
    return [recipient_row(r) for r in rows]


# --- CSV import -------------------------------------------------------------------------------

# Rows are COPYed into this temp table, then upserted in one statement. The grams travel as one
# text joined by U+001F (no name can hold a control character), metadata as JSON text: COPY of
# a text is several times cheaper for the gateway than COPY of a text[] or a jsonb.
_IMPORT_TEMP = """
CREATE TEMP TABLE IF NOT EXISTS recipient_import (
    id text, name text, phone text, tags text[], locale text, metadata text, name_key text,
    search_grams text
) ON COMMIT DROP
"""
IMPORT_COLUMNS = ("id", "name", "phone", "tags", "locale", "metadata", "name_key", "search_grams")
"""What each row given to :func:`import_rows` holds, in order (grams joined by U+001F,
metadata as JSON text)."""
_IMPORT_CLEAR = "TRUNCATE recipient_import"
# $1 account, $2 the file has a tags column, $3 it has a locale column. Metadata columns merge
# into what the recipient has. Returns how many rows were inserted and how many changed.
_IMPORT_UPSERT = """
WITH written AS (
    INSERT INTO recipients AS r (id, account_id, name, phone, tags, locale, metadata, name_key, search_grams)
    SELECT id, $1, name, phone, tags, locale, metadata::jsonb, name_key, string_to_array(search_grams, E'\x1f')
    FROM recipient_import
    ON CONFLICT (account_id, phone) DO UPDATE
    SET name = EXCLUDED.name, name_key = EXCLUDED.name_key, search_grams = EXCLUDED.search_grams,
        tags = CASE WHEN $2 THEN EXCLUDED.tags ELSE r.tags END,
        locale = CASE WHEN $3 THEN EXCLUDED.locale ELSE r.locale END,
        metadata = r.metadata || EXCLUDED.metadata, updated_at = now()
    WHERE (r.name, r.tags, r.locale, r.metadata)
          IS DISTINCT FROM (EXCLUDED.name, CASE WHEN $2 THEN EXCLUDED.tags ELSE r.tags END,
                            CASE WHEN $3 THEN EXCLUDED.locale ELSE r.locale END, r.metadata || EXCLUDED.metadata)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) AS imported, count(*) FILTER (WHERE NOT inserted) AS updated
FROM written
"""
# After a large import: fresh planner statistics and the GIN indexes' pending entries merged,
# so that searches right after it are as fast as later ones.
_ANALYZE = """
ANALYZE recipients;
SELECT gin_clean_pending_list('recipients_grams_idx'), gin_clean_pending_list('recipients_tags_idx');
"""


async def import_rows(
    conn: Conn, *, account_id: str, rows: Sequence[tuple[Any, ...]], has_tags: bool, has_locale: bool
) -> ImportCounts:
    """Upsert ``rows`` (shaped as :data:`IMPORT_COLUMNS`) inside the caller's transaction: a
    number already in the directory gets the row's name, its tags and locale if the file has
    those columns, and its metadata merged."""
    await conn.execute(_IMPORT_TEMP)
    await conn.execute(_IMPORT_CLEAR)
    await conn.copy_records_to_table("recipient_import", records=rows, columns=IMPORT_COLUMNS)
    counts = await conn.fetchrow(_IMPORT_UPSERT, account_id, has_tags, has_locale)
    assert counts is not None
    return ImportCounts(imported=int(counts[0]), updated=int(counts[1]))


async def analyze_after_import(conn: Conn) -> None:
    """Planner statistics refreshed and GIN pending lists merged."""
    await conn.execute(_ANALYZE)
