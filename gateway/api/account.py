"""``GET /v1/account``: the calling account."""

from __future__ import annotations

import msgspec

from gateway.accounts import Account
from gateway.api.routing import Call
from gateway.timefmt import utcnow

__all__ = ["AccountResponse", "get_account"]


class AccountResponse(msgspec.Struct, kw_only=True):
    """``{"ok": true, "account": {...}, "subscription_active", "token_id", "scopes"}``."""

    ok: bool = True
    account: Account
    subscription_active: bool
    token_id: str
    scopes: list[str]


async def get_account(call: Call[None, None]) -> AccountResponse:
    """The account that owns the calling token."""
    principal = call.principal
    assert principal is not None
    return AccountResponse(
        account=principal.account,
        subscription_active=principal.account.subscription_active(utcnow()),
        token_id=principal.token_id,
        scopes=sorted(principal.scopes),
    )
