"""The dashboard's one way to do anything: call the API's own handler.

A page names an endpoint by ``(method, path)`` as declared in :data:`gateway.api.ENDPOINTS`;
:func:`call_api` finds it, checks the session's token against the endpoint's scope (and the
subscription for sending routes) with the same :class:`~gateway.access.auth.Authenticator`
checks, decodes the query and the form values into the endpoint's own Structs, calls the
handler with a :class:`~gateway.api.routing.Call` for the session's principal and returns the
Struct it returns. Failures are the API's own :class:`~gateway.errors.ApiError`; an endpoint
this build does not declare raises :class:`NotAvailable`, which pages show as "not available
in this version".
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.datastructures import QueryParams
from starlette.requests import Request

from gateway.api import ENDPOINTS
from gateway.api.routing import Call, Endpoint, Reply, decode_query
from gateway.bodies import field_errors
from gateway.errors import ApiError
from gateway.services import Services

__all__ = ["NotAvailable", "call_api", "endpoint", "has_endpoint"]


class NotAvailable(Exception):
    """The endpoint a page part needs is not declared in this build."""


def endpoint(method: str, path: str) -> Endpoint | None:
    """The declared endpoint ``method path`` (``path`` as declared, with ``{name}`` parts)."""
    for e in ENDPOINTS:
        if e.method == method and e.path == path:
            return e
    return None


def has_endpoint(method: str, path: str) -> bool:
    """Whether this build declares ``method path``."""
    return endpoint(method, path) is not None


def _body(values: dict[str, Any], shape: type[Any]) -> Any:
    """Form values as the endpoint's body Struct (text converted as the fields say), or the
    API's own validation_error naming every bad field."""
    try:
        return msgspec.convert(values, shape, strict=False)
    except msgspec.ValidationError as exc:
        first = str(exc)
    fields = field_errors(values, shape, lambda value, kind: msgspec.convert(value, kind, strict=False))
    raise ApiError("validation_error", "request body is invalid", {"fields": fields or {"body": first[:200]}})


async def call_api(
    request: Request,
    principal: Any,
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> Any:
    """Call the handler of ``method path`` as ``principal``; return what it answers.

    ``params`` fill the path's ``{name}`` parts, ``query`` is decoded like a query string,
    ``body`` like a JSON body. Raises ApiError (the API's answer) or NotAvailable.
    """
    found = endpoint(method, path)
    if found is None:
        raise NotAvailable(f"{method} {path}")
    svc: Services = request.app.state.services
    if found.scope is not None:
        svc.authenticator.permit(principal, found.scope, sending=found.sending)
    decoded_query = decode_query(QueryParams(query or {}), found.query) if found.query is not None else None
    decoded_body: Any = None
    if found.body is not None:
        decoded_body = _body(body or {}, found.body)
    raw = msgspec.json.encode(body) if body is not None else b""
    result = await found.handler(
        Call(
            svc,
            principal if found.scope is not None else None,
            decoded_body,
            decoded_query,
            params or {},
            request,
            raw,
        )
    )
    return result.body if isinstance(result, Reply) else result
