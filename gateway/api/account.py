"""``GET /v1/account`` (the calling account) and ``PATCH /v1/account`` (its profile)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
import phonenumbers

from gateway.access.accounts import CAP_FIELDS, Account, set_quiet_hours, update_caps, update_profile
from gateway.api.fields import LABEL_PATTERN
from gateway.api.routing import Call
from gateway.errors import ApiError
from gateway.sending.quiet_hours import QuietHours, sending_windows

__all__ = ["AccountResponse", "AccountUpdate", "get_account", "update_account"]


class AccountResponse(msgspec.Struct, kw_only=True):
    """``{"ok": true, "account": {...}, "subscription_active", "token_id", "scopes"}``."""

    ok: bool = True
    account: Account
    subscription_active: bool
    token_id: str
    scopes: list[str]


class AccountUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``PATCH /v1/account``: absent fields stay; ``default_region: null`` clears it.

    Subscription, status and the number policy are the operator's (``relaygate accounts``)."""

    name: (
        Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=LABEL_PATTERN)] | msgspec.UnsetType
    ) = msgspec.UNSET
    relay_mode: Literal["auto", "manual"] | msgspec.UnsetType = msgspec.UNSET
    default_region: Annotated[str, msgspec.Meta(pattern=r"\A[A-Z]{2}\Z")] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    """ISO 3166 region for national numbers (``UZ``, ``BD``, …)."""
    quiet_hours: QuietHours | msgspec.UnsetType | None = msgspec.UNSET
    """When messages may be sent (docs/api.md "Quiet hours"); ``null`` clears it (any time)."""
    daily_send_limit: Annotated[int, msgspec.Meta(ge=1, le=100_000_000)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    """Messages accepted per UTC day; ``null``: no cap."""
    monthly_send_limit: Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    """Messages accepted per UTC calendar month; ``null``: no cap."""
    per_recipient_hour_limit: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    """Messages to one number in any rolling hour; ``null``: the gateway's default."""


def _answer(call: Call[Any, Any], account: Account) -> AccountResponse:
    principal = call.principal
    assert principal is not None
    return AccountResponse(
        account=account,
        subscription_active=account.subscription_active(call.services.clock.now()),
        token_id=principal.token_id,
        scopes=sorted(principal.scopes),
    )


async def get_account(call: Call[None, None]) -> AccountResponse:
    """The account that owns the calling token."""
    assert call.principal is not None
    return _answer(call, call.principal.account)


async def update_account(call: Call[AccountUpdate, None]) -> AccountResponse:
    """Rename the account, switch its relay mode, set its default region, its quiet hours or its
    sending caps (one transaction)."""
    spec = call.body
    region = None if spec.default_region is msgspec.UNSET else spec.default_region
    if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
        raise ApiError(
            "validation_error", "request body is invalid", {"fields": {"default_region": "unknown region"}}
        )
    if isinstance(spec.quiet_hours, QuietHours):
        sending_windows(spec.quiet_hours)  # validation_error naming the field
    caps = {k: getattr(spec, k) for k in CAP_FIELDS if getattr(spec, k) is not msgspec.UNSET}
    async with call.services.pool.acquire() as conn, conn.transaction():
        account = await update_profile(
            conn,
            call.account_id,
            name=None if spec.name is msgspec.UNSET else spec.name,
            relay_mode=None if spec.relay_mode is msgspec.UNSET else spec.relay_mode,
            default_region=region,
            set_region=spec.default_region is not msgspec.UNSET,
        )
        if account is not None and not isinstance(spec.quiet_hours, msgspec.UnsetType):
            account = await set_quiet_hours(conn, call.account_id, spec.quiet_hours)
        if account is not None and caps:
            account = await update_caps(conn, call.account_id, caps)
    assert account is not None
    call.services.authenticator.forget_account(call.account_id)  # effective at once here
    return _answer(call, account)
