"""The front door of the HTTP app: a pure ASGI middleware that sees every request first.

1. **The guard.** It refuses, before any route runs, a request whose path or query string
   carries a character no id, cursor, filter or number may hold: C0 and C1 control characters
   (NUL among them, which PostgreSQL cannot store), DEL, and the Unicode line and paragraph
   separators. Every route is covered, present and future, in one place.
2. **The direct table.** A declared endpoint whose path has no parameters (the send, OTP and
   status calls among them) is found by one dict lookup on ``(method, path)`` and run here,
   instead of behind Starlette's linear scan of every route's regex and its per-route
   exception wrappers. Its errors get the answers the app's exception handlers give
   (``on_error`` is the same function), so a client cannot tell which way a request went.
   Everything else — paths with parameters, the mobile API, the dashboard, unknown paths and
   wrong methods (404/405) — goes on to Starlette's router.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api.routing import Endpoint, direct_table
from gateway.errors import ApiError, error_body

__all__ = ["UNSAFE_CHARACTERS", "FrontDoor"]

UNSAFE_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""Characters refused in paths and query strings (and in single-line labels of bodies)."""

_REASON = "must not contain control characters"

ErrorResponder = Callable[[Request, Exception], Awaitable[Response]]


class FrontDoor:
    """Answers ``validation_error`` (422) for an unsafe path or query, runs the direct table's
    endpoints, and passes the rest on."""

    def __init__(self, app: ASGIApp, *, endpoints: Sequence[Endpoint], on_error: ErrorResponder) -> None:
        self.app = app
        self._direct = direct_table(endpoints)
        self._on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error = _check(scope)
        if error is not None:
            await _refuse(error, send)
            return
        run = self._direct.get((scope["method"], _route_path(scope)))
        if run is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await run(request)
        except Exception as exc:
            response = await self._on_error(request, exc)
        await response(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path the routes see: without the ``root_path`` of an app mounted under a prefix
    (what Starlette's router matches)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root + "/") else path


async def _refuse(error: ApiError, send: Send) -> None:
    body = error_body(error)
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _check(scope: Scope) -> ApiError | None:
    if UNSAFE_CHARACTERS.search(scope.get("path", "")):
        return ApiError("validation_error", "invalid path", {"path": _REASON})
    query = scope.get("query_string", b"")
    if not query:
        return None
    fields: dict[str, str] = {}
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if UNSAFE_CHARACTERS.search(name) or UNSAFE_CHARACTERS.search(value):
            fields[UNSAFE_CHARACTERS.sub("?", name)[:64]] = _REASON
    if fields:
        return ApiError("validation_error", "invalid query", {"fields": fields})
    return None
