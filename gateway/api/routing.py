"""Declared routes: each endpoint states what it is once, and one adapter does the rest.

An :class:`Endpoint` names its method, path, scope, body and query types (msgspec Structs),
its answer types per status and the error codes it may return. :func:`adapt` turns it into a
Starlette handler that authenticates and checks the scope, reads the path parameters, decodes
the query and the body, calls the endpoint's handler as a plain function of a :class:`Call`,
and encodes what it returns. The same table generates the OpenAPI document
(:mod:`gateway.api.openapi`) and Starlette's route list, so the three cannot disagree.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.access.auth import Principal
from gateway.bodies import decode_json, field_errors, read_body
from gateway.errors import ApiError
from gateway.metrics import METRICS
from gateway.services import Services

__all__ = ["Call", "Endpoint", "Reply", "adapt", "decode_query", "direct_table", "starlette_routes"]

B = TypeVar("B")
Q = TypeVar("Q")

_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class Call(Generic[B, Q]):
    """Everything a handler may use: the services, the caller, and the decoded request."""

    services: Services
    principal: Principal | None
    body: B
    query: Q
    path: dict[str, str]
    request: Request
    """For the rare header (``Idempotency-Key``) or the client address."""
    raw_body: bytes = b""
    """The body as received (idempotency hashes it)."""

    @property
    def account_id(self) -> str:
        """The calling account (authenticated endpoints only)."""
        assert self.principal is not None
        return self.principal.account.id


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer with a status or headers other than the endpoint's default."""

    body: Any
    status: int | None = None
    headers: dict[str, str] | None = None


Handler = Callable[[Call[Any, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One route of the API, declared once."""

    method: str
    path: str
    """Full path, e.g. ``/api/v1/sms/send``; ``{name}`` marks a path parameter."""
    handler: Handler
    summary: str
    tag: str
    responses: dict[int, type[Any]]
    """Answer type per status; the first is the default success status."""
    scope: str | None = None
    """Scope the token needs; None for routes without a token."""
    sending: bool = False
    """The account's subscription must be active."""
    body: type[Any] | None = None
    body_optional: bool = False
    """An empty body means the body type's defaults."""
    query: type[Any] | None = None
    errors: tuple[str, ...] = ()
    """Error codes beyond the ones implied by auth, path parameters, query and body."""
    before_body: Callable[[Request, Services], None] | None = None
    """A check that runs before the body is read (the per-address pairing limit)."""
    idempotent: bool = False
    """Accepts an ``Idempotency-Key`` header."""
    examples: dict[str, Any] = field(default_factory=dict)
    """``request`` and/or a status code as text → an example instance for the docs."""

    @property
    def status(self) -> int:
        """The default success status."""
        status: int = next(iter(self.responses))
        return status

    @property
    def path_params(self) -> list[str]:
        """Names of the path parameters, in order."""
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]

    @property
    def error_codes(self) -> list[str]:
        """Every error code this endpoint may answer with."""
        codes: list[str] = []
        if self.scope is not None:
            codes += ["unauthorized", "forbidden", "rate_limited"]
        if self.sending:
            codes.append("subscription_expired")
        if self.path_params:
            codes.append("not_found")
        if self.body is not None:
            codes += ["payload_too_large", "validation_error"]
        if self.query is not None or self.path_params:
            codes.append("validation_error")
        codes += [*self.errors, "unavailable"]
        return list(dict.fromkeys(codes))


def decode_query(params: QueryParams, shape: type[Q]) -> Q:
    """The query string as ``shape`` (strings converted as the field types say; unknown
    parameters ignored); a validation_error names every bad parameter."""
    raw = {k: v for k, v in params.items()}
    try:
        return msgspec.convert(raw, shape, strict=False)
    except msgspec.ValidationError as exc:
        first = str(exc)
    fields = field_errors(raw, shape, lambda value, kind: msgspec.convert(value, kind, strict=False))
    raise ApiError("validation_error", "invalid query", {"fields": fields or {"query": first[:200]}})


def adapt(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette handler of ``endpoint``: authenticate, decode, call, encode."""

    path_params = endpoint.path_params

    async def run(request: Request) -> Response:
        svc: Services = request.app.state.services
        started = svc.clock.monotonic()
        principal: Principal | None = None
        rate_headers: dict[str, str] = {}
        if endpoint.scope is not None:
            principal, rate_headers = await svc.authenticator.authorize(
                request.headers.get("authorization"), endpoint.scope, sending=endpoint.sending
            )
        try:
            path = {name: str(request.path_params[name]) for name in path_params}
            query = decode_query(request.query_params, endpoint.query) if endpoint.query is not None else None
            if endpoint.before_body is not None:
                endpoint.before_body(request, svc)
            raw, body = b"", None
            if endpoint.body is not None:
                raw = await read_body(request, svc.settings.max_body_bytes)
                if endpoint.body_optional and not raw.strip():
                    body = endpoint.body()
                else:
                    body = decode_json(raw, endpoint.body)
            result = await endpoint.handler(Call(svc, principal, body, query, path, request, raw))
        except ApiError as exc:
            exc.headers.update(rate_headers)  # every answer says where the caller stands
            raise
        if endpoint.sending:
            METRICS.accept.observe(svc.clock.monotonic() - started)
        reply = result if isinstance(result, Reply) else Reply(result)
        return Response(
            _encoder.encode(reply.body),
            status_code=reply.status or endpoint.status,
            headers={**rate_headers, **(reply.headers or {})},
            media_type="application/json",
        )

    run.__name__ = run.__qualname__ = getattr(endpoint.handler, "__name__", "endpoint")
    return run


def starlette_routes(endpoints: list[Endpoint]) -> list[Route]:
    """One Starlette route per endpoint (405 ``Allow`` is computed from the whole table)."""
    return [Route(e.path, adapt(e), methods=[e.method]) for e in endpoints]


def direct_table(
    endpoints: Sequence[Endpoint],
) -> dict[tuple[str, str], Callable[[Request], Awaitable[Response]]]:
    """``(method, path)`` → handler of every endpoint without path parameters (the front door
    runs these without Starlette's route scan: :mod:`gateway.api.front_door`)."""
    return {(e.method, e.path): adapt(e) for e in endpoints if not e.path_params}
