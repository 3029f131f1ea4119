"""A pure ASGI middleware that refuses, before any route runs, a request whose path or query
string carries a character no id, cursor, filter or number may hold: C0 and C1 control
characters (NUL among them, which PostgreSQL cannot store), DEL, and the Unicode line and
paragraph separators. Every route is covered, present and future, in one place.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import ApiError, error_body

__all__ = ["UNSAFE_CHARACTERS", "InputGuard"]

UNSAFE_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""Characters refused in paths and query strings (and in single-line labels of bodies)."""

_REASON = "must not contain control characters"


class InputGuard:
    """Answers ``validation_error`` (422) for an unsafe path or query; passes the rest on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            error = _check(scope)
            if error is not None:
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
                return
        await self.app(scope, receive, send)


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
