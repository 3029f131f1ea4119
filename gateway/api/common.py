"""Helpers every handler uses: reach the services, authorize, decode bodies, encode answers."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import Principal
from gateway.bodies import read_json
from gateway.errors import ApiError
from gateway.services import Services

__all__ = ["authorize", "body", "cursor_page", "idempotency_key", "json_response", "services"]

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


def idempotency_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` header, if any (1-255 printable characters)."""
    key = request.headers.get("idempotency-key")
    if key is not None and not (1 <= len(key) <= 255 and key.isprintable()):
        raise ApiError(
            "validation_error",
            "invalid Idempotency-Key header",
            {"fields": {"Idempotency-Key": "1-255 printable characters"}},
        )
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
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= max_limit:
        raise ApiError("validation_error", "invalid query", {"fields": {"limit": f"integer 1..{max_limit}"}})
    if len(cursor) > 64:
        raise ApiError("validation_error", "invalid query", {"fields": {"cursor": "too long"}})
    return cursor, int(raw_limit)
