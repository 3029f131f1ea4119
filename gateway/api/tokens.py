"""``/v1/tokens``: list, create and revoke access tokens (scope ``tokens.manage``).

A token can only grant scopes its creator holds, so ``tokens.manage`` is no way to escalate.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway.accounts import TokenInfo, create_token, revoke_token, token_from_row
from gateway.api.common import authorize, body, cursor_page, json_response, services
from gateway.api.fields import Label100
from gateway.errors import ApiError
from gateway.ids import has_prefix
from gateway.limits import MAX_ACTIVE_TOKENS, too_many
from gateway.scopes import ALL_SCOPES, Scope
from store import queries as q

__all__ = ["create", "list_tokens", "revoke"]


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


async def list_tokens(request: Request) -> Response:
    """Every token of the account, revoked ones included, oldest first."""
    principal = await authorize(request, "tokens.manage")
    cursor, limit = cursor_page(request)
    rows = await services(request).pool.fetch(q.TOKEN_LIST, principal.account.id, cursor, limit + 1)
    items = [token_from_row(r) for r in rows[:limit]]
    next_cursor = items[-1].id if len(rows) > limit else None
    return json_response(TokenList(tokens=items, next_cursor=next_cursor))


async def create(request: Request) -> Response:
    """Create a token with a subset of the caller's scopes."""
    principal = await authorize(request, "tokens.manage")
    spec = await body(request, TokenCreate)
    missing = sorted(set(spec.scopes) - principal.scopes)
    if missing:
        raise ApiError("forbidden", "a token cannot grant scopes its creator lacks", {"scopes": missing})
    pool = services(request).pool
    if await pool.fetchval(q.TOKEN_ACTIVE_COUNT, principal.account.id) >= MAX_ACTIVE_TOKENS:
        raise too_many("access_tokens", MAX_ACTIVE_TOKENS, "active access tokens")
    wanted: set[str] = set(spec.scopes)
    scopes = [s for s in ALL_SCOPES if s in wanted]
    info, token = await create_token(pool, principal.account.id, scopes, name=spec.name)
    return json_response(TokenCreated(token=token, token_info=info), 201)


async def revoke(request: Request) -> Response:
    """Revoke one of the account's tokens (idempotent; effective at once in this process)."""
    principal = await authorize(request, "tokens.manage")
    token_id = request.path_params["token_id"]
    info = None
    if has_prefix(token_id, "tok"):
        info = await revoke_token(services(request).pool, token_id, principal.account.id)
    if info is None:
        raise ApiError("not_found", "no such token", {"token_id": token_id})
    services(request).authenticator.forget_token(token_id)
    return json_response(TokenRevoked(token_info=info))
