"""OTP codes (``otps``): the SQL and the typed functions that run it.

Sends and verifies are group-committed: one transaction for a batch of them. A batch of sends
takes the locks of its (account, number) pairs (:func:`lock_numbers`), reads their recent sends
for the throttles (:func:`recent_sends`) and stores the new codes, replacing each pair's pending
one (:func:`insert_codes`): one statement each for the whole batch. A verify (a group-committed batch of them) reads its codes ``FOR UPDATE``
with :func:`codes_for_update` and writes their outcomes with :func:`record_verifies`, one
statement each for the whole batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from store.database import Conn

__all__ = [
    "NewCode",
    "OtpStatusRow",
    "OtpVerifyRow",
    "RecentSend",
    "VerifyOutcome",
    "codes_for_update",
    "insert_codes",
    "latest_code",
    "lock_key",
    "lock_numbers",
    "otp_status",
    "recent_sends",
    "record_verifies",
]


class OtpVerifyRow(msgspec.Struct, frozen=True):
    """What a verify needs of a code (columns of ``_VERIFY_COLUMNS``, in order)."""

    id: str
    to_number: str
    purpose: str
    code_hash: bytes
    status: str
    attempts_used: int
    max_attempts: int
    expires_at: datetime
    message_id: str


class OtpStatusRow(msgspec.Struct, frozen=True):
    """A code as ``GET /v1/otp/{id}`` shows it (never the hash), with its SMS's state."""

    id: str
    to_number: str
    purpose: str
    locale: str
    code_length: int
    status: str
    attempts_used: int
    max_attempts: int
    expires_at: datetime
    created_at: datetime
    verified_at: datetime | None
    message_id: str
    sms_status: str
    sms_failure_reason: str | None
    sms_device_id: str | None
    sms_sent_at: datetime | None
    sms_delivered_at: datetime | None


class VerifyOutcome(msgspec.Struct, frozen=True):
    """A code's new state after a verify."""

    id: str
    status: str
    attempts_used: int
    verified_at: datetime | None


def lock_key(account_id: str, to: str) -> int:
    """The advisory-lock key of an (account, number): 64 bits of BLAKE2b, as a signed bigint."""
    digest = hashlib.blake2b(f"otp\x1f{account_id}\x1f{to}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_LOCK_KEYS = "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k"


async def lock_numbers(conn: Conn, keys: Sequence[int]) -> None:
    """Take the transaction locks of these (account, number) keys (:func:`lock_key`), in the
    order given (callers sort them: two transactions then never wait for each other in a cycle)."""
    await conn.execute(_LOCK_KEYS, list(keys))


class RecentSend(msgspec.Struct, frozen=True):
    """A code sent to a number: when, and for which purpose."""

    created_at: datetime
    purpose: str


# The sends to each ($1 account, $2 number) pair since $3, oldest first.
_RECENT_SENDS = """
SELECT o.account_id, o.to_number, o.created_at, o.purpose
FROM (SELECT DISTINCT * FROM unnest($1::text[], $2::text[]) AS n (account_id, to_number)) n
JOIN otps o ON o.account_id = n.account_id AND o.to_number = n.to_number AND o.created_at > $3
ORDER BY o.created_at, o.id
"""


async def recent_sends(
    conn: Conn, *, numbers: Sequence[tuple[str, str]], since: datetime
) -> dict[tuple[str, str], list[RecentSend]]:
    """The codes sent to each (account, number) since ``since``, oldest first (read under the
    numbers' locks, so nothing is being added meanwhile)."""
    records = await conn.fetch(_RECENT_SENDS, [a for a, _ in numbers], [n for _, n in numbers], since)
    found: dict[tuple[str, str], list[RecentSend]] = {}
    for r in records:
        found.setdefault((r[0], r[1]), []).append(RecentSend(r[2], r[3]))
    return found


class NewCode(msgspec.Struct, frozen=True, kw_only=True):
    """A code to store (``created_at`` is also the instant its pair's pending code is replaced)."""

    id: str
    account_id: str
    to_number: str
    purpose: str
    locale: str
    code_hash: bytes
    code_length: int
    message_id: str
    max_attempts: int
    expires_at: datetime
    created_at: datetime


# New pending codes replace their pair's pending one (expired if past its expiry at the new
# code's creation). Both statements see the same snapshot: the new rows are never replaced.
# The replaced rows are locked in id order, like the verifies lock theirs, so a batch of sends
# and a batch of verifies never wait for each other in a cycle.
_INSERT_CODES = """
WITH v AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[],
                         $7::smallint[], $8::text[], $9::integer[], $10::timestamptz[], $11::timestamptz[])
        AS v (id, account_id, to_number, purpose, locale, code_hash, code_length, message_id,
              max_attempts, expires_at, created_at)
), pending AS (
    SELECT o.id, v.id AS by_id, v.created_at FROM otps o
    JOIN v ON o.account_id = v.account_id AND o.to_number = v.to_number AND o.purpose = v.purpose
    WHERE o.status = 'pending'
    ORDER BY o.id FOR UPDATE OF o
), replaced AS (
    UPDATE otps o SET status = CASE WHEN o.expires_at <= p.created_at THEN 'expired' ELSE 'invalidated' END
    FROM pending p WHERE o.id = p.id
    RETURNING p.by_id, o.id, o.message_id
), inserted AS (
    INSERT INTO otps (id, account_id, to_number, purpose, locale, code_hash, code_length, message_id,
                      max_attempts, expires_at, created_at)
    SELECT * FROM v
)
SELECT by_id, id, message_id FROM replaced
"""


async def insert_codes(conn: Conn, codes: Sequence[NewCode]) -> dict[str, list[tuple[str, str]]]:
    """Store new pending codes (at most one per (account, number, purpose)), replacing each pair's
    pending one: ``{new id: [(replaced id, its message id), …]}``."""
    if not codes:
        return {}
    records = await conn.fetch(
        _INSERT_CODES,
        [c.id for c in codes],
        [c.account_id for c in codes],
        [c.to_number for c in codes],
        [c.purpose for c in codes],
        [c.locale for c in codes],
        [c.code_hash for c in codes],
        [c.code_length for c in codes],
        [c.message_id for c in codes],
        [c.max_attempts for c in codes],
        [c.expires_at for c in codes],
        [c.created_at for c in codes],
    )
    replaced: dict[str, list[tuple[str, str]]] = {}
    for r in records:
        replaced.setdefault(r[0], []).append((r[1], r[2]))
    return replaced


_VERIFY_COLUMNS = (
    "id, to_number, purpose, code_hash, status, attempts_used, max_attempts, expires_at, message_id"
)
# Many codes at once, locked in id order (two batches lock shared rows in one order).
_BY_IDS_FOR_UPDATE = f"""
SELECT account_id, {_VERIFY_COLUMNS} FROM otps WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE
"""
# The latest code of a (number, purpose) pair.
_LATEST = """
SELECT id FROM otps WHERE account_id = $1 AND to_number = $2 AND purpose = $3
ORDER BY created_at DESC, id DESC LIMIT 1
"""


def _verify_row(record: Any) -> OtpVerifyRow:
    return OtpVerifyRow(
        record[0],
        record[1],
        record[2],
        bytes(record[3]),
        record[4],
        record[5],
        record[6],
        record[7],
        record[8],
    )


async def codes_for_update(conn: Conn, *, otp_ids: Sequence[str]) -> dict[str, tuple[str, OtpVerifyRow]]:
    """The codes of ``otp_ids`` that exist, locked for the transaction: ``{id: (account_id, row)}``
    (the caller checks the account)."""
    records = await conn.fetch(_BY_IDS_FOR_UPDATE, list(otp_ids))
    return {r[1]: (r[0], _verify_row(tuple(r)[1:])) for r in records}


async def latest_code(conn: Conn, *, account_id: str, to: str, purpose: str) -> str | None:
    """The id of the (number, purpose) pair's latest code."""
    found: str | None = await conn.fetchval(_LATEST, account_id, to, purpose)
    return found


_RECORD_VERIFIES = """
UPDATE otps SET status = v.status, attempts_used = v.used, verified_at = v.verified_at
FROM unnest($1::text[], $2::text[], $3::integer[], $4::timestamptz[]) AS v (id, status, used, verified_at)
WHERE otps.id = v.id
"""


async def record_verifies(conn: Conn, outcomes: Sequence[VerifyOutcome]) -> None:
    """Write the new state of codes (one statement for all)."""
    if not outcomes:
        return
    await conn.execute(
        _RECORD_VERIFIES,
        [o.id for o in outcomes],
        [o.status for o in outcomes],
        [o.attempts_used for o in outcomes],
        [o.verified_at for o in outcomes],
    )


_STATUS = """
SELECT o.id, o.to_number, o.purpose, o.locale, o.code_length, o.status, o.attempts_used, o.max_attempts,
       o.expires_at, o.created_at, o.verified_at, o.message_id, m.status,
       m.failure_reason, m.device_id, m.sent_at, m.delivered_at
FROM otps o JOIN messages m ON m.id = o.message_id
WHERE o.id = $1 AND o.account_id = $2
"""


async def otp_status(conn: Conn, *, otp_id: str, account_id: str) -> OtpStatusRow | None:
    """The account's code ``otp_id`` with its SMS's delivery state."""
    record = await conn.fetchrow(_STATUS, otp_id, account_id)
    return None if record is None else OtpStatusRow(*record)
