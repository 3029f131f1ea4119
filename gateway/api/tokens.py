"""``/v1/tokens``: list, create and revoke access tokens (scope ``tokens.manage``).

A token can only grant scopes its creator holds, so ``tokens.manage`` is no way to escalate.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from gateway.access.accounts import TokenInfo, create_token, revoke_token, token_infos
from gateway.access.scopes import ALL_SCOPES, Scope
from gateway.api.common import PageQuery, page
from gateway.api.fields import Label100
from gateway.api.routing import Call
from gateway.errors import ApiError
from gateway.ids import has_prefix
from gateway.limits import MAX_ACTIVE_TOKENS, too_many
from store.accounts import active_token_count

__all__ = ["TokenCreate", "TokenCreated", "TokenList", "TokenRevoked", "create", "list_tokens", "revoke"]


class TokenCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v1/tokens``."""

    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1, max_length=len(ALL_SCOPES))]
    name: Label100 = ""


class TokenCreated(msgspec.Struct, kw_only=True):
    """The new token: ``token`` is shown this once and never again."""

    ok: bool = True
    token: str
    token_info: TokenInfo


class TokenList(msgspec.Struct, kw_only=True):
    """A page of the account's tokens."""

    ok: bool = True
    tokens: list[TokenInfo]
    next_cursor: str | None


class TokenRevoked(msgspec.Struct, kw_only=True):
    """The revoked token's record."""

    ok: bool = True
    token_info: TokenInfo


async def list_tokens(call: Call[None, PageQuery]) -> TokenList:
    """Every token of the account, revoked ones included, oldest first."""
    rows = await token_infos(
        call.services.pool, call.account_id, after=call.query.cursor, limit=call.query.limit + 1
    )
    items, next_cursor = page(rows, call.query.limit, lambda t: t, lambda t: t.id)
    return TokenList(tokens=items, next_cursor=next_cursor)


async def create(call: Call[TokenCreate, None]) -> TokenCreated:
    """Create a token with a subset of the caller's scopes."""
    assert call.principal is not None
    missing = sorted(set(call.body.scopes) - call.principal.scopes)
    if missing:
        raise ApiError("forbidden", "a token cannot grant scopes its creator lacks", {"scopes": missing})
    pool = call.services.pool
    if await active_token_count(pool, account_id=call.account_id) >= MAX_ACTIVE_TOKENS:
        raise too_many("access_tokens", MAX_ACTIVE_TOKENS, "active access tokens")
    wanted: set[str] = set(call.body.scopes)
    scopes = [s for s in ALL_SCOPES if s in wanted]
    info, token = await create_token(pool, call.account_id, scopes, name=call.body.name)
    return TokenCreated(token=token, token_info=info)


async def revoke(call: Call[None, None]) -> TokenRevoked:
    """Revoke one of the account's tokens (idempotent; effective at once in this process)."""
    token_id = call.path["token_id"]
    info = None
    if has_prefix(token_id, "tok"):
        info = await revoke_token(call.services.pool, token_id, call.account_id)
    if info is None:
        raise ApiError("not_found", "no such token", {"token_id": token_id[:64]})
    call.services.authenticator.forget_token(token_id)
    return TokenRevoked(token_info=info)
