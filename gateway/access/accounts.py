"""Accounts and access tokens: the core operations shared by the CLI and the HTTP API."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import msgspec

from gateway.access.scopes import ALL_SCOPES
from gateway.access.tokens import ACCESS_PREFIX, generate_token, hash_token, token_hint
from gateway.ids import new_id
from gateway.sending.number_policy import ALWAYS_ALLOWED, effective_number_types
from gateway.sending.quiet_hours import QuietHours
from store import accounts as store
from store.accounts import AccountRow, TokenRow
from store.database import Conn, Db

__all__ = [
    "CAP_FIELDS",
    "Account",
    "TokenInfo",
    "account_from_row",
    "create_account",
    "create_token",
    "get_account",
    "revoke_token",
    "token_infos",
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
    quiet_hours: QuietHours | None = None
    """When the account's messages may be sent (docs/api.md "Quiet hours"); null: at any time."""
    daily_send_limit: int | None = None
    """Messages the account may have accepted per UTC day; None: no cap."""
    monthly_send_limit: int | None = None
    """Messages the account may have accepted per UTC calendar month; None: no cap."""
    per_recipient_hour_limit: int | None = None
    """Messages to one number in any rolling hour; None: the gateway's default
    (``RELAYGATE_RECIPIENT_HOURLY_LIMIT``)."""

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


def account_from_row(row: AccountRow) -> Account:
    """The :class:`Account` of an ``accounts`` row (its number types and quiet hours resolved)."""
    return Account(
        id=row.id,
        name=row.name,
        relay_mode=row.relay_mode,
        default_region=row.default_region,
        subscription_expires_at=row.subscription_expires_at,
        status=row.status,
        created_at=row.created_at,
        allowed_number_types=effective_number_types(row.extra_number_types),
        allowed_countries=row.allowed_countries,
        otp_per_number_hour=row.otp_per_number_hour,
        otp_per_number_day=row.otp_per_number_day,
        quiet_hours=None if row.quiet_hours is None else msgspec.convert(row.quiet_hours, QuietHours),
        daily_send_limit=row.daily_send_limit,
        monthly_send_limit=row.monthly_send_limit,
        per_recipient_hour_limit=row.per_recipient_hour_limit,
    )


def _maybe_account(row: AccountRow | None) -> Account | None:
    return None if row is None else account_from_row(row)


def token_from_row(row: TokenRow) -> TokenInfo:
    """The public record of an ``access_tokens`` row."""
    return TokenInfo(
        id=row.id,
        name=row.name,
        hint=row.hint,
        scopes=row.scopes,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
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
        row = await store.insert_account(
            conn,
            account_id=new_id("acc"),
            name=name,
            relay_mode=relay_mode,
            default_region=default_region,
            subscription_expires_at=expiry_from_date(expires),
        )
        account = account_from_row(row)
        _, token = await create_token(conn, account.id, list(ALL_SCOPES), name="initial")
    return account, token


async def get_account(db: Db, account_id: str) -> Account | None:
    """The account, if it exists."""
    return _maybe_account(await store.account_by_id(db, account_id=account_id))


async def create_token(
    db: Db, account_id: str, scopes: list[str], *, name: str = ""
) -> tuple[TokenInfo, str]:
    """Create an access token with ``scopes``; return its record and the token (shown once)."""
    token = generate_token(ACCESS_PREFIX)
    row = await store.insert_token(
        db,
        token_id=new_id("tok"),
        account_id=account_id,
        name=name,
        token_hash=hash_token(token),
        hint=token_hint(token),
        scopes=scopes,
    )
    return token_from_row(row), token


async def revoke_token(db: Db, token_id: str, account_id: str | None) -> TokenInfo | None:
    """Revoke (idempotent); None when no such token (for that account)."""
    row = await store.revoke_token(db, token_id=token_id, account_id=account_id)
    return None if row is None else token_from_row(row)


async def token_infos(db: Db, account_id: str, *, after: str = "", limit: int = 10_000) -> list[TokenInfo]:
    """The account's tokens (revoked ones too) with ids after ``after``, oldest first."""
    return [
        token_from_row(r) for r in await store.token_page(db, account_id=account_id, after=after, limit=limit)
    ]


async def update_profile(
    db: Db,
    account_id: str,
    *,
    name: str | None = None,
    relay_mode: str | None = None,
    default_region: str | None = None,
    set_region: bool = False,
) -> Account | None:
    """Change the name, relay mode or default region (``set_region`` to change the region, to
    None too); None when no such account."""
    row = await store.update_profile(
        db,
        account_id=account_id,
        name=name,
        relay_mode=relay_mode,
        default_region=default_region,
        set_region=set_region,
    )
    return _maybe_account(row)


async def set_quiet_hours(db: Db, account_id: str, quiet_hours: QuietHours | None) -> Account | None:
    """Set (or clear, with None) the account's quiet hours, already validated; None when no such
    account. Applies to messages accepted from then on."""
    return _maybe_account(await store.set_quiet_hours(db, account_id=account_id, quiet_hours=quiet_hours))


async def renew(db: Db, account_id: str, through: date | None) -> Account | None:
    """The subscription is paid through ``through`` (None: no expiry); None when no such account."""
    row = await store.set_subscription_expiry(db, account_id=account_id, expires_at=expiry_from_date(through))
    return _maybe_account(row)


async def update_number_policy(
    db: Db,
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
    row = await store.update_number_policy(
        db,
        account_id=account_id,
        extra_number_types=extra_number_types,
        allowed_countries=allowed_countries,
        otp_per_number_hour=otp_per_number_hour,
        otp_per_number_day=otp_per_number_day,
    )
    return _maybe_account(row)


async def update_caps(db: Db, account_id: str, changes: dict[str, int | None]) -> Account | None:
    """Set the sending caps named in ``changes`` (``daily_send_limit``, ``monthly_send_limit``,
    ``per_recipient_hour_limit``; None: no cap / the gateway default); None when no such account."""
    return _maybe_account(await store.update_caps(db, account_id=account_id, changes=changes))
