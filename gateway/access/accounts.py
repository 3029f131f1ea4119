"""Accounts and access tokens: the core operations shared by the CLI and the HTTP API."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import asyncpg
import msgspec

from gateway.access.scopes import ALL_SCOPES
from gateway.access.tokens import ACCESS_PREFIX, generate_token, hash_token, token_hint
from gateway.ids import new_id
from gateway.sending.number_policy import ALWAYS_ALLOWED, effective_number_types
from gateway.sending.quiet_hours import QuietHours
from store import queries as q
from store.database import Conn

__all__ = [
    "CAP_FIELDS",
    "Account",
    "TokenInfo",
    "account_from_row",
    "create_account",
    "create_token",
    "revoke_token",
    "update_caps",
    "update_number_policy",
]

DEFAULT_OTP_PER_NUMBER_HOUR = 10
DEFAULT_OTP_PER_NUMBER_DAY = 20
CAP_FIELDS = ("daily_send_limit", "monthly_send_limit", "per_recipient_hour_limit")
"""The account's sending caps (see :mod:`gateway.sending.caps`)."""


class Account(msgspec.Struct, kw_only=True):
    """A customer account as the API shows it."""

    id: str
    name: str
    relay_mode: str
    default_region: str | None
    subscription_expires_at: datetime | None
    status: str
    created_at: datetime
    allowed_number_types: list[str] = msgspec.field(default_factory=lambda: list(ALWAYS_ALLOWED))
    """Number types this account may send to (see :mod:`gateway.sending.number_policy`)."""
    allowed_countries: list[str] = msgspec.field(default_factory=list)
    """ISO 3166 region codes messages may go to; empty = every country."""
    otp_per_number_hour: int = DEFAULT_OTP_PER_NUMBER_HOUR
    """OTP codes to one number (all purposes together) in any rolling hour."""
    otp_per_number_day: int = DEFAULT_OTP_PER_NUMBER_DAY
    """OTP codes to one number (all purposes together) in any rolling 24 hours."""
    daily_send_limit: int | None = None
    """Messages the account may have accepted per UTC day; None: no cap."""
    monthly_send_limit: int | None = None
    """Messages the account may have accepted per UTC calendar month; None: no cap."""
    per_recipient_hour_limit: int | None = None
    """Messages to one number in any rolling hour; None: the gateway's default
    (``RELAYGATE_RECIPIENT_HOURLY_LIMIT``)."""
    quiet_hours: QuietHours | None = None
    """When the account's messages may be sent (docs/api.md "Quiet hours"); null: at any time."""

    def subscription_active(self, now: datetime) -> bool:
        """False once the subscription's expiry has passed."""
        return self.subscription_expires_at is None or self.subscription_expires_at > now


class TokenInfo(msgspec.Struct, kw_only=True):
    """An access token's public record (never the token itself)."""

    id: str
    name: str
    hint: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def account_from_row(row: Any) -> Account:
    """Build an :class:`Account` from a row with the accounts columns."""
    return Account(
        id=row["id"],
        name=row["name"],
        relay_mode=row["relay_mode"],
        default_region=row["default_region"],
        subscription_expires_at=row["subscription_expires_at"],
        status=row["status"],
        created_at=row["created_at"],
        allowed_number_types=effective_number_types(row["extra_number_types"]),
        allowed_countries=list(row["allowed_countries"]),
        otp_per_number_hour=row["otp_per_number_hour"],
        otp_per_number_day=row["otp_per_number_day"],
        daily_send_limit=row["daily_send_limit"],
        monthly_send_limit=row["monthly_send_limit"],
        per_recipient_hour_limit=row["per_recipient_hour_limit"],
        quiet_hours=_quiet_hours(row),
    )


def _quiet_hours(row: Any) -> QuietHours | None:
    raw = row["quiet_hours"]
    return None if raw is None else msgspec.json.decode(raw, type=QuietHours)


def token_from_row(row: Any) -> TokenInfo:
    """Build a :class:`TokenInfo` from an access_tokens row."""
    return TokenInfo(
        id=row["id"],
        name=row["name"],
        hint=row["hint"],
        scopes=list(row["scopes"]),
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


def expiry_from_date(day: date | None) -> datetime | None:
    """A subscription paid through ``day`` expires at the end of that day (UTC)."""
    if day is None:
        return None
    return datetime.combine(day, time.max, tzinfo=UTC)


async def create_account(
    conn: Conn,
    name: str,
    *,
    expires: date | None = None,
    relay_mode: str = "auto",
    default_region: str | None = None,
) -> tuple[Account, str]:
    """Create an account and a token with every scope; return both (the token is shown once)."""
    async with conn.transaction():
        row = await conn.fetchrow(
            q.ACCOUNT_INSERT, new_id("acc"), name, relay_mode, default_region, expiry_from_date(expires)
        )
        account = account_from_row(row)
        _, token = await create_token(conn, account.id, list(ALL_SCOPES), name="initial")
    return account, token


async def create_token(
    conn: Conn | asyncpg.Pool[Any], account_id: str, scopes: list[str], *, name: str = ""
) -> tuple[TokenInfo, str]:
    """Create an access token with ``scopes``; return its record and the token (shown once)."""
    token = generate_token(ACCESS_PREFIX)
    row = await conn.fetchrow(
        q.TOKEN_INSERT, new_id("tok"), account_id, name, hash_token(token), token_hint(token), scopes
    )
    return token_from_row(row), token


async def revoke_token(
    conn: Conn | asyncpg.Pool[Any], token_id: str, account_id: str | None
) -> TokenInfo | None:
    """Revoke (idempotent); None when no such token (for that account)."""
    row = await conn.fetchrow(q.TOKEN_REVOKE, token_id, account_id)
    return None if row is None else token_from_row(row)


async def update_profile(
    conn: Conn | asyncpg.Pool[Any],
    account_id: str,
    *,
    name: str | None = None,
    relay_mode: str | None = None,
    default_region: str | None = None,
    set_region: bool = False,
) -> Account | None:
    """Change the name, relay mode or default region (``set_region`` to change the region, to
    None too); None when no such account."""
    row = await conn.fetchrow(
        q.ACCOUNT_UPDATE_PROFILE, account_id, name, relay_mode, default_region, set_region
    )
    return None if row is None else account_from_row(row)


async def set_quiet_hours(
    conn: Conn | asyncpg.Pool[Any], account_id: str, quiet_hours: QuietHours | None
) -> Account | None:
    """Set (or clear, with None) the account's quiet hours, already validated; None when no such
    account. Applies to messages accepted from then on."""
    raw = None if quiet_hours is None else msgspec.json.encode(quiet_hours).decode()
    row = await conn.fetchrow(q.ACCOUNT_SET_QUIET_HOURS, account_id, raw)
    return None if row is None else account_from_row(row)


async def renew(conn: Conn | asyncpg.Pool[Any], account_id: str, through: date | None) -> Account | None:
    """The subscription is paid through ``through`` (None: no expiry); None when no such account."""
    row = await conn.fetchrow(q.ACCOUNT_SET_EXPIRY, account_id, expiry_from_date(through))
    return None if row is None else account_from_row(row)


async def update_number_policy(
    conn: Conn | asyncpg.Pool[Any],
    account_id: str,
    *,
    extra_number_types: list[str] | None = None,
    allowed_countries: list[str] | None = None,
    otp_per_number_hour: int | None = None,
    otp_per_number_day: int | None = None,
) -> Account | None:
    """Change the given destination settings (None keeps one); None when no such account.

    A running gateway sees the change within its auth cache's TTL (2 s).
    """
    row = await conn.fetchrow(
        q.ACCOUNT_UPDATE_NUMBER_POLICY,
        account_id,
        extra_number_types,
        allowed_countries,
        otp_per_number_hour,
        otp_per_number_day,
    )
    return None if row is None else account_from_row(row)


async def update_caps(
    conn: Conn | asyncpg.Pool[Any], account_id: str, changes: dict[str, int | None]
) -> Account | None:
    """Set the sending caps named in ``changes`` (``daily_send_limit``, ``monthly_send_limit``,
    ``per_recipient_hour_limit``; None: no cap / the gateway default); None when no such account."""
    row = await conn.fetchrow(
        q.ACCOUNT_UPDATE_CAPS,
        account_id,
        changes.get("daily_send_limit"),
        changes.get("monthly_send_limit"),
        changes.get("per_recipient_hour_limit"),
        "daily_send_limit" in changes,
        "monthly_send_limit" in changes,
        "per_recipient_hour_limit" in changes,
    )
    return None if row is None else account_from_row(row)
