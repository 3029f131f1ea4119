"""The dashboard's one way to do anything: call the API's own handler.

A page names an endpoint by ``(method, path)`` as declared in :data:`gateway.api.ENDPOINTS`;
:func:`call_api` finds it, checks the session's token against the endpoint's scope (and the
subscription for sending routes) with the same :class:`~gateway.access.auth.Authenticator`
checks, decodes the query and the form values (as the JSON body they stand for) with the API's
own decoders into the endpoint's Structs, calls the
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
from gateway.bodies import decode_json
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
    if found.before_body is not None:
        found.before_body(request, svc)
    # The form's values as the JSON body the API would have received, decoded the API's way
    # (the same field errors, the same refusal of NUL characters).
    raw = msgspec.json.encode(body) if body is not None else b""
    decoded_body: Any = None
    if found.body is not None:
        decoded_body = (
            decode_json(raw, found.body) if raw.strip() or not found.body_optional else found.body()
        )
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
