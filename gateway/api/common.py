"""Helpers every handler uses: reach the services, authorize, decode bodies, encode answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import Principal
from gateway.bodies import read_json
from gateway.errors import ApiError
from gateway.services import Services
from gateway.timefmt import parse_rfc3339

__all__ = [
    "authorize",
    "body",
    "cursor_page",
    "idempotency_key",
    "invalid_query",
    "json_response",
    "query_time",
    "services",
]

T = TypeVar("T")

_encoder = msgspec.json.Encoder()


def services(request: Request) -> Services:
    """The running gateway's services."""
    svc: Services = request.app.state.services
    return svc


async def authorize(request: Request, scope: str, *, sending: bool = False) -> Principal:
    """The caller, if it holds ``scope`` (and, for sending routes, an active subscription)."""
    return await services(request).authenticator.authorize(
        request.headers.get("authorization"), scope, sending=sending
    )


async def body(request: Request, shape: type[T]) -> T:
    """The request body decoded as ``shape`` within the configured size limit."""
    return await read_json(request, shape, services(request).settings.max_body_bytes)


def idempotency_key(request: Request, account_id: str) -> str | None:
    """The ``Idempotency-Key`` header, if any (1-255 printable characters), counted against the
    account's daily budget of keyed requests (each may store one key for a day)."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not (1 <= len(key) <= 255 and key.isprintable()):
        raise ApiError(
            "validation_error",
            "invalid Idempotency-Key header",
            {"fields": {"Idempotency-Key": "1-255 printable characters"}},
        )
    budget = services(request).idempotency_budget
    wait = budget.take(account_id)
    if wait > 0:
        error = ApiError.rate_limited(wait, f"at most {budget.limit} requests with an Idempotency-Key a day")
        error.details.update(reason="idempotency_keys", limit=budget.limit)
        raise error
    return key


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Encode ``payload`` (a Struct) as the response body."""
    return Response(
        _encoder.encode(payload), status_code=status, headers=headers, media_type="application/json"
    )


def cursor_page(request: Request, *, default_limit: int = 50, max_limit: int = 200) -> tuple[str, int]:
    """``(cursor, limit)`` from the query string; the cursor is the last id of the previous page."""
    cursor = request.query_params.get("cursor", "")
    raw_limit = request.query_params.get("limit", str(default_limit))
    if not (raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 6) or not (
        1 <= int(raw_limit) <= max_limit
    ):
        raise invalid_query("limit", f"integer 1..{max_limit}")
    if len(cursor) > 80:
        raise invalid_query("cursor", "too long")
    return cursor, int(raw_limit)


def invalid_query(field: str, reason: str) -> ApiError:
    """The validation_error for one bad query parameter."""
    return ApiError("validation_error", "invalid query", {"fields": {field: reason}})


def query_time(request: Request, name: str) -> datetime | None:
    """An RFC 3339 time from the query (``?since=2026-03-14T12:30:00Z``), or None when absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    moment = parse_rfc3339(raw)
    if moment is None:
        raise invalid_query(name, "RFC 3339 time with an offset, e.g. 2026-03-14T12:30:00Z")
    return moment
