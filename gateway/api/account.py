"""``GET /v1/account``: the calling account."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway.accounts import Account
from gateway.api.common import authorize, json_response
from gateway.timefmt import utcnow

__all__ = ["get_account"]


class AccountResponse(msgspec.Struct, kw_only=True):
    """``{"ok": true, "account": {...}, "token": {"id", "scopes"}}``."""

    ok: bool = True
    account: Account
    subscription_active: bool
    token_id: str
    scopes: list[str]


async def get_account(request: Request) -> Response:
    """The account that owns the calling token."""
    principal = await authorize(request, "account.read")
    return json_response(
        AccountResponse(
            account=principal.account,
            subscription_active=principal.account.subscription_active(utcnow()),
            token_id=principal.token_id,
            scopes=sorted(principal.scopes),
        )
    )
