"""Relay devices and pairing codes: the SQL and the typed functions that run it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from store.database import Db
from store.rows import many, one

__all__ = [
    "DeviceRow",
    "LivePairingCodes",
    "PairingCandidate",
    "all_paired_devices",
    "count_pairing_failures",
    "device_by_token",
    "device_for_account",
    "device_page",
    "devices_of_account",
    "flush_telemetry",
    "insert_device",
    "insert_pairing_code",
    "live_pairing_codes",
    "lock_live_codes",
    "mark_code_used",
    "purge_pairing_codes",
    "unpair_device",
    "update_device",
]


class DeviceRow(msgspec.Struct, frozen=True, kw_only=True):
    """One paired device: its settings and its last flushed telemetry."""

    id: str
    account_id: str
    name: str
    model: str
    app_version: str
    enabled: bool
    max_in_flight: int | None
    per_minute_limit: int | None
    per_day_limit: int | None
    paired_at: datetime
    last_seen_at: datetime | None
    battery: int | None
    charging: bool | None
    signal: int | None
    network: str | None
    sims: list[dict[str, Any]]
    queue_length: int | None
    sim_policy: str
    sim_limits: dict[str, int]
    """Daily limit per SIM slot, keyed by the slot as text (``{"0": 200}``)."""


class LivePairingCodes(msgspec.Struct, frozen=True):
    """An account's unused, unexpired codes: how many, and when the first of them expires."""

    live: int
    first_expiry: datetime | None


class PairingCandidate(msgspec.Struct, frozen=True):
    """A live code with the public half typed, locked for the pairing attempt."""

    id: str
    account_id: str
    secret_hash: bytes


# --- devices ----------------------------------------------------------------------------------

_DEVICE_COLUMNS = """
id, account_id, name, model, app_version, enabled, max_in_flight, per_minute_limit, per_day_limit,
paired_at, last_seen_at, battery, charging, signal, network, sims, queue_length,
sim_policy, sim_limits
"""
_DEVICE_INSERT = """
INSERT INTO devices (id, account_id, name, model, app_version, token_hash) VALUES ($1, $2, $3, $4, $5, $6)
"""
_DEVICE_BY_TOKEN = f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE token_hash = $1 AND unpaired_at IS NULL"
_DEVICE_FOR_ACCOUNT = (
    f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE id = $1 AND account_id = $2 AND unpaired_at IS NULL"
)
_DEVICE_LIST = f"""
SELECT {_DEVICE_COLUMNS} FROM devices
WHERE account_id = $1 AND unpaired_at IS NULL AND id > $2 ORDER BY id LIMIT $3
"""
_DEVICE_ALL_PAIRED = f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE unpaired_at IS NULL"
_DEVICE_ALL_FOR_ACCOUNT = f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE account_id = $1 AND unpaired_at IS NULL ORDER BY id LIMIT 10000"
# $3 name, $4 enabled, $11 SIM policy, $12 per-SIM limits: NULL = unchanged. The three limits
# $5-$7 are set (to NULL too: back to the default) when their flags $8-$10 are true.
_DEVICE_UPDATE = f"""
UPDATE devices SET
    name = coalesce($3, name),
    enabled = coalesce($4, enabled),
    max_in_flight = CASE WHEN $8 THEN $5 ELSE max_in_flight END,
    per_minute_limit = CASE WHEN $9 THEN $6 ELSE per_minute_limit END,
    per_day_limit = CASE WHEN $10 THEN $7 ELSE per_day_limit END,
    sim_policy = coalesce($11, sim_policy),
    sim_limits = coalesce($12::jsonb, sim_limits)
WHERE id = $1 AND account_id = $2 AND unpaired_at IS NULL
RETURNING {_DEVICE_COLUMNS}
"""
_DEVICE_UNPAIR = """
UPDATE devices SET unpaired_at = now() WHERE id = $1 AND account_id = $2 AND unpaired_at IS NULL RETURNING id
"""
# Arrays of equal length, one element per device.
_TELEMETRY_FLUSH = """
UPDATE devices d SET
    last_seen_at = u.last_seen_at, battery = u.battery, charging = u.charging, signal = u.signal,
    network = u.network, sims = u.sims, queue_length = u.queue_length,
    app_version = coalesce(u.app_version, d.app_version)
FROM unnest($1::text[], $2::timestamptz[], $3::int[], $4::bool[], $5::int[], $6::text[], $7::jsonb[],
            $8::int[], $9::text[])
     AS u(id, last_seen_at, battery, charging, signal, network, sims, queue_length, app_version)
WHERE d.id = u.id
"""
_encode = msgspec.json.Encoder().encode


async def insert_device(
    db: Db, *, device_id: str, account_id: str, name: str, model: str, app_version: str, token_hash: bytes
) -> None:
    """Store a newly paired device (its token as a hash)."""
    await db.execute(_DEVICE_INSERT, device_id, account_id, name, model, app_version, token_hash)


async def device_by_token(db: Db, *, token_hash: bytes) -> DeviceRow | None:
    """The paired device whose token has this hash."""
    return one(await db.fetchrow(_DEVICE_BY_TOKEN, token_hash), DeviceRow)


async def device_for_account(db: Db, *, device_id: str, account_id: str) -> DeviceRow | None:
    """The account's paired device ``device_id``."""
    return one(await db.fetchrow(_DEVICE_FOR_ACCOUNT, device_id, account_id), DeviceRow)


async def device_page(db: Db, *, account_id: str, after: str, limit: int) -> list[DeviceRow]:
    """At most ``limit`` of the account's paired devices with ids after ``after`` ('' = the first)."""
    return many(await db.fetch(_DEVICE_LIST, account_id, after, limit), DeviceRow)


async def devices_of_account(db: Db, *, account_id: str) -> list[DeviceRow]:
    """Every paired device of the account (at most 10 000), by id."""
    return many(await db.fetch(_DEVICE_ALL_FOR_ACCOUNT, account_id), DeviceRow)


async def all_paired_devices(db: Db) -> list[DeviceRow]:
    """Every paired device of every account (start-up)."""
    return many(await db.fetch(_DEVICE_ALL_PAIRED), DeviceRow)


_KEEP: Any = msgspec.UNSET


async def update_device(
    db: Db,
    *,
    device_id: str,
    account_id: str,
    name: str | None = None,
    enabled: bool | None = None,
    max_in_flight: int | msgspec.UnsetType | None = _KEEP,
    per_minute_limit: int | msgspec.UnsetType | None = _KEEP,
    per_day_limit: int | msgspec.UnsetType | None = _KEEP,
    sim_policy: str | None = None,
    sim_limits: dict[str, int] | None = None,
) -> DeviceRow | None:
    """Change a paired device's settings; None when the account has no such device.

    ``name``, ``enabled``, ``sim_policy`` and ``sim_limits`` (replacing the stored map): None
    keeps them. The limits: ``UNSET`` (the default) keeps one, None clears it (the default
    applies), a number sets it.
    """
    limits = (max_in_flight, per_minute_limit, per_day_limit)
    row = await db.fetchrow(
        _DEVICE_UPDATE,
        device_id,
        account_id,
        name,
        enabled,
        *(None if v is msgspec.UNSET else v for v in limits),
        *(v is not msgspec.UNSET for v in limits),
        sim_policy,
        sim_limits,
    )
    return one(row, DeviceRow)


async def unpair_device(db: Db, *, device_id: str, account_id: str) -> bool:
    """Unpair (its token stops working); False when the account has no such paired device."""
    return await db.fetchval(_DEVICE_UNPAIR, device_id, account_id) is not None


async def flush_telemetry(
    db: Db,
    *,
    device_ids: Sequence[str],
    last_seen_at: Sequence[datetime | None],
    battery: Sequence[int | None],
    charging: Sequence[bool | None],
    signal: Sequence[int | None],
    network: Sequence[str | None],
    sims: Sequence[list[dict[str, Any]]],
    queue_length: Sequence[int | None],
    app_version: Sequence[str | None],
) -> None:
    """Write the telemetry of many devices with one statement: element ``i`` of every sequence
    is device ``device_ids[i]``'s (``app_version`` None keeps the stored one)."""
    await db.execute(
        _TELEMETRY_FLUSH,
        list(device_ids),
        list(last_seen_at),
        list(battery),
        list(charging),
        list(signal),
        list(network),
        [msgspec.Raw(_encode(s)) for s in sims],  # a list inside the array would read as a dimension
        list(queue_length),
        list(app_version),
    )


# --- pairing codes ----------------------------------------------------------------------------

_PAIRING_LIVE_FOR_ACCOUNT = """
SELECT count(*) AS live, min(expires_at) AS first_expiry FROM pairing_codes
WHERE account_id = $1 AND used_at IS NULL AND expires_at > now() AND failed_attempts < $2
"""
_PAIRING_PURGE = "DELETE FROM pairing_codes WHERE expires_at < now() - make_interval(secs => $1)"
_PAIRING_INSERT = """
INSERT INTO pairing_codes (id, account_id, lookup, secret_hash, expires_at) VALUES ($1, $2, $3, $4, $5)
"""
_PAIRING_LIVE_BY_LOOKUP = """
SELECT id, account_id, secret_hash FROM pairing_codes
WHERE lookup = $1 AND used_at IS NULL AND expires_at > now() AND failed_attempts < $2
FOR UPDATE
"""
_PAIRING_COUNT_FAILURE = (
    "UPDATE pairing_codes SET failed_attempts = failed_attempts + 1 WHERE id = ANY($1::text[])"
)
_PAIRING_MARK_USED = "UPDATE pairing_codes SET used_at = now(), device_id = $2 WHERE id = $1"


async def live_pairing_codes(db: Db, *, account_id: str, max_failed_tries: int) -> LivePairingCodes:
    """The account's codes still usable (unused, unexpired, fewer failed tries than the limit)."""
    row = one(await db.fetchrow(_PAIRING_LIVE_FOR_ACCOUNT, account_id, max_failed_tries), LivePairingCodes)
    assert row is not None
    return row


async def purge_pairing_codes(db: Db, *, older_than: float) -> None:
    """Drop codes that expired more than ``older_than`` seconds ago (spent or not)."""
    await db.execute(_PAIRING_PURGE, older_than)


async def insert_pairing_code(
    db: Db, *, code_id: str, account_id: str, lookup: str, secret_hash: bytes, expires_at: datetime
) -> None:
    """Store a new code (its secret half as a hash)."""
    await db.execute(_PAIRING_INSERT, code_id, account_id, lookup, secret_hash, expires_at)


async def lock_live_codes(db: Db, *, lookup: str, max_failed_tries: int) -> list[PairingCandidate]:
    """The live codes with this public half, locked until the caller's transaction ends."""
    return many(await db.fetch(_PAIRING_LIVE_BY_LOOKUP, lookup, max_failed_tries), PairingCandidate)


async def count_pairing_failures(db: Db, *, code_ids: list[str]) -> None:
    """One more failed try on each of these codes."""
    await db.execute(_PAIRING_COUNT_FAILURE, code_ids)


async def mark_code_used(db: Db, *, code_id: str, device_id: str) -> None:
    """The code paired ``device_id`` and is spent."""
    await db.execute(_PAIRING_MARK_USED, code_id, device_id)
