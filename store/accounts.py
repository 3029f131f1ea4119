"""Accounts and access tokens: the SQL and the typed functions that run it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from store.database import Conn, Db
from store.rows import many, one

__all__ = [
    "AccountRow",
    "PrincipalRow",
    "TokenRow",
    "account_by_id",
    "account_count",
    "active_token_count",
    "all_accounts",
    "authenticate",
    "insert_account",
    "insert_token",
    "lock_accounts",
    "principal_from",
    "revoke_token",
    "set_quiet_hours",
    "set_subscription_expiry",
    "token_page",
    "update_caps",
    "update_number_policy",
    "update_profile",
]


class AccountRow(msgspec.Struct, frozen=True, kw_only=True):
    """One row of ``accounts``."""

    id: str
    name: str
    relay_mode: str
    default_region: str | None
    subscription_expires_at: datetime | None
    status: str
    created_at: datetime
    extra_number_types: list[str]
    allowed_countries: list[str]
    otp_per_number_hour: int
    otp_per_number_day: int
    quiet_hours: dict[str, Any] | None
    """The JSON of docs/api.md "Quiet hours", or None (send at any time)."""
    daily_send_limit: int | None
    monthly_send_limit: int | None
    per_recipient_hour_limit: int | None


class TokenRow(msgspec.Struct, frozen=True, kw_only=True):
    """One row of ``access_tokens`` without its hash."""

    id: str
    account_id: str
    name: str
    hint: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class PrincipalRow(msgspec.Struct, frozen=True, kw_only=True):
    """A live token and its account: who is calling."""

    token_id: str
    scopes: list[str]
    account: AccountRow


def principal_from(record: Any) -> PrincipalRow | None:
    """A row of ``token_id, scopes, accounts.*`` (token and dashboard-session lookups) as a
    :class:`PrincipalRow`."""
    if record is None:
        return None
    account = one(record, AccountRow)
    assert account is not None
    return PrincipalRow(token_id=record["token_id"], scopes=list(record["scopes"]), account=account)


# --- accounts ---------------------------------------------------------------------------------

_ACCOUNT_INSERT = """
INSERT INTO accounts (id, name, relay_mode, default_region, subscription_expires_at)
VALUES ($1, $2, $3, $4, $5)
RETURNING *
"""
_ACCOUNT_BY_ID = "SELECT * FROM accounts WHERE id = $1"
_ACCOUNT_COUNT = "SELECT count(*) FROM accounts"
# Other writers wait; readers do not. Two starts on one empty database create one account.
_ACCOUNT_LOCK = "LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE"
_ACCOUNT_SET_EXPIRY = "UPDATE accounts SET subscription_expires_at = $2 WHERE id = $1 RETURNING *"
_ACCOUNT_LIST = "SELECT * FROM accounts ORDER BY id LIMIT 10000"
# $2 name, $3 relay mode: NULL = unchanged; $4 default region applies only when $5 is true.
_ACCOUNT_UPDATE_PROFILE = """
UPDATE accounts SET name = coalesce($2, name), relay_mode = coalesce($3, relay_mode),
    default_region = CASE WHEN $5 THEN $4 ELSE default_region END
WHERE id = $1 RETURNING *
"""
_ACCOUNT_SET_QUIET_HOURS = "UPDATE accounts SET quiet_hours = $2 WHERE id = $1 RETURNING *"
# A NULL parameter keeps that setting.
_ACCOUNT_UPDATE_NUMBER_POLICY = """
UPDATE accounts SET extra_number_types = coalesce($2, extra_number_types),
                    allowed_countries = coalesce($3, allowed_countries),
                    otp_per_number_hour = coalesce($4, otp_per_number_hour),
                    otp_per_number_day = coalesce($5, otp_per_number_day)
WHERE id = $1
RETURNING *
"""
# $2 daily, $3 monthly, $4 per recipient per hour. $5/$6/$7 true = set that one (to NULL too),
# false = keep it.
_ACCOUNT_UPDATE_CAPS = """
UPDATE accounts SET daily_send_limit = CASE WHEN $5 THEN $2 ELSE daily_send_limit END,
                    monthly_send_limit = CASE WHEN $6 THEN $3 ELSE monthly_send_limit END,
                    per_recipient_hour_limit = CASE WHEN $7 THEN $4 ELSE per_recipient_hour_limit END
WHERE id = $1
RETURNING *
"""


async def insert_account(
    db: Db,
    *,
    account_id: str,
    name: str,
    relay_mode: str,
    default_region: str | None,
    subscription_expires_at: datetime | None,
) -> AccountRow:
    """Create an account."""
    row = one(
        await db.fetchrow(
            _ACCOUNT_INSERT, account_id, name, relay_mode, default_region, subscription_expires_at
        ),
        AccountRow,
    )
    assert row is not None
    return row


async def account_by_id(db: Db, *, account_id: str) -> AccountRow | None:
    """The account, if it exists."""
    return one(await db.fetchrow(_ACCOUNT_BY_ID, account_id), AccountRow)


async def account_count(db: Db) -> int:
    """How many accounts there are."""
    count: int = await db.fetchval(_ACCOUNT_COUNT)
    return count


async def lock_accounts(conn: Conn) -> None:
    """Until the caller's transaction ends, no other transaction creates or changes an account."""
    await conn.execute(_ACCOUNT_LOCK)


async def all_accounts(db: Db) -> list[AccountRow]:
    """Every account (at most 10 000), by id."""
    return many(await db.fetch(_ACCOUNT_LIST), AccountRow)


async def set_subscription_expiry(
    db: Db, *, account_id: str, expires_at: datetime | None
) -> AccountRow | None:
    """The subscription ends at ``expires_at`` (None: never); None when no such account."""
    return one(await db.fetchrow(_ACCOUNT_SET_EXPIRY, account_id, expires_at), AccountRow)


async def update_profile(
    db: Db,
    *,
    account_id: str,
    name: str | None,
    relay_mode: str | None,
    default_region: str | None,
    set_region: bool,
) -> AccountRow | None:
    """Change name and relay mode (None keeps one) and, with ``set_region``, the default region."""
    return one(
        await db.fetchrow(_ACCOUNT_UPDATE_PROFILE, account_id, name, relay_mode, default_region, set_region),
        AccountRow,
    )


async def set_quiet_hours(db: Db, *, account_id: str, quiet_hours: object | None) -> AccountRow | None:
    """Store ``quiet_hours`` (any value the jsonb codec encodes, e.g. a Struct; None clears it)."""
    return one(await db.fetchrow(_ACCOUNT_SET_QUIET_HOURS, account_id, quiet_hours), AccountRow)


async def update_number_policy(
    db: Db,
    *,
    account_id: str,
    extra_number_types: list[str] | None,
    allowed_countries: list[str] | None,
    otp_per_number_hour: int | None,
    otp_per_number_day: int | None,
) -> AccountRow | None:
    """Change the given destination settings (None keeps one); None when no such account."""
    return one(
        await db.fetchrow(
            _ACCOUNT_UPDATE_NUMBER_POLICY,
            account_id,
            extra_number_types,
            allowed_countries,
            otp_per_number_hour,
            otp_per_number_day,
        ),
        AccountRow,
    )


_CAPS = ("daily_send_limit", "monthly_send_limit", "per_recipient_hour_limit")


async def update_caps(db: Db, *, account_id: str, changes: dict[str, int | None]) -> AccountRow | None:
    """Set the caps named in ``changes`` (keys of :class:`AccountRow`'s ``*_limit`` fields; None
    clears one); the others stay. None when no such account."""
    values = [changes.get(name) for name in _CAPS]
    given = [name in changes for name in _CAPS]
    return one(await db.fetchrow(_ACCOUNT_UPDATE_CAPS, account_id, *values, *given), AccountRow)


# --- access tokens ----------------------------------------------------------------------------

_TOKEN_COLUMNS = "id, account_id, name, hint, scopes, created_at, last_used_at, revoked_at"
_TOKEN_INSERT = f"""
INSERT INTO access_tokens (id, account_id, name, token_hash, hint, scopes)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING {_TOKEN_COLUMNS}
"""
_TOKEN_ACTIVE_COUNT = "SELECT count(*) FROM access_tokens WHERE account_id = $1 AND revoked_at IS NULL"
# Authenticate and stamp last_used_at in one round trip.
_TOKEN_AUTHENTICATE = """
WITH t AS (
    UPDATE access_tokens SET last_used_at = now()
    WHERE token_hash = $1 AND revoked_at IS NULL
    RETURNING id, account_id, scopes
)
SELECT t.id AS token_id, t.scopes, a.*
FROM t JOIN accounts a ON a.id = t.account_id
"""
_TOKEN_LIST = f"""
SELECT {_TOKEN_COLUMNS}
FROM access_tokens WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3
"""
# $2 account id (NULL from the CLI: any account)
_TOKEN_REVOKE = f"""
UPDATE access_tokens SET revoked_at = coalesce(revoked_at, now())
WHERE id = $1 AND ($2::text IS NULL OR account_id = $2)
RETURNING {_TOKEN_COLUMNS}
"""


async def insert_token(
    db: Db, *, token_id: str, account_id: str, name: str, token_hash: bytes, hint: str, scopes: list[str]
) -> TokenRow:
    """Store a new access token (its hash only)."""
    row = one(
        await db.fetchrow(_TOKEN_INSERT, token_id, account_id, name, token_hash, hint, scopes), TokenRow
    )
    assert row is not None
    return row


async def active_token_count(db: Db, *, account_id: str) -> int:
    """The account's tokens not revoked."""
    count: int = await db.fetchval(_TOKEN_ACTIVE_COUNT, account_id)
    return count


async def authenticate(db: Db, *, token_hash: bytes) -> PrincipalRow | None:
    """The live token with this hash and its account (stamping its last use), or None."""
    return principal_from(await db.fetchrow(_TOKEN_AUTHENTICATE, token_hash))


async def token_page(db: Db, *, account_id: str, after: str, limit: int) -> list[TokenRow]:
    """At most ``limit`` of the account's tokens with ids after ``after`` ('' = from the first)."""
    return many(await db.fetch(_TOKEN_LIST, account_id, after, limit), TokenRow)


async def revoke_token(db: Db, *, token_id: str, account_id: str | None) -> TokenRow | None:
    """Revoke (idempotent) a token of ``account_id`` (None: of any account); None when no such token."""
    return one(await db.fetchrow(_TOKEN_REVOKE, token_id, account_id), TokenRow)
