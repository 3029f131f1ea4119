"""``GET /api/openapi.json`` (the generated document) and ``GET /api/docs`` (a readable
reference page). Both without a token; the page is one self-contained file served by the
gateway and fetches nothing from other sites."""

from __future__ import annotations

from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["openapi_json", "reference_page"]


@cache
def _document() -> bytes:
    from gateway.api import ENDPOINTS
    from gateway.api.openapi import build_openapi, render

    return render(build_openapi(ENDPOINTS))


@cache
def _page() -> bytes:
    return resources.files("gateway.api").joinpath("static/reference.html").read_bytes()


async def openapi_json(request: Request) -> Response:
    """The OpenAPI 3.1 document of this gateway."""
    return Response(_document(), media_type="application/json")


async def reference_page(request: Request) -> Response:
    """The API reference, rendered in the browser from ``openapi.json``."""
    return Response(
        _page(),
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": "default-src 'none'; script-src 'self' 'unsafe-inline'; "
            "style-src 'unsafe-inline'; connect-src 'self'",
            "X-Content-Type-Options": "nosniff",
        },
    )
