"""The Starlette application: the route table plus the error handlers that give every failure
the one JSON shape (see :mod:`gateway.errors`)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api import ENDPOINTS, routes
from gateway.api.front_door import FrontDoor
from gateway.dashboard import install as install_dashboard
from gateway.dashboard import routes as dashboard_routes
from gateway.errors import ApiError, error_body
from gateway.logs import get_logger
from gateway.mobile import routes as mobile_routes
from gateway.mobile.link import PhoneDesk
from gateway.services import Services
from store.database import DATABASE_DOWN

__all__ = ["build_app"]

log = get_logger("gateway.http")


def _response(error: ApiError) -> Response:
    return Response(
        error_body(error), status_code=error.status, headers=error.headers, media_type="application/json"
    )


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        methods = _allowed_methods(request)
        allowed = ", ".join(methods)
        error = ApiError(
            "method_not_allowed",
            f"{request.method} is not allowed on {request.url.path}",
            {"allowed_methods": methods},
            headers={"Allow": allowed} if allowed else None,
        )
    elif exc.status_code == 404:
        error = ApiError("not_found", f"no route {request.method} {request.url.path}")
    else:
        error = ApiError("validation_error", str(exc.detail))
    return _response(error)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of this path answers (Starlette's own 405 names only the first)."""
    path = request.scope.get("path", "")
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(path):
            methods |= route.methods
    return sorted(methods)


UNAVAILABLE_RETRY_AFTER = 2
"""Seconds a client is told to wait (``Retry-After``) while the database is unreachable."""


async def _unavailable(request: Request, exc: Exception) -> Response:
    """The database cannot be reached: 503 ``unavailable`` with ``Retry-After``. Registered per
    exception class (not under ``Exception``), so Starlette answers without re-raising and the
    keep-alive connection stays usable."""
    log.warning("http.database_unavailable", path=request.url.path, error=repr(exc))
    seconds = UNAVAILABLE_RETRY_AFTER
    return _response(
        ApiError(
            "unavailable",
            "the database is unreachable; retry later",
            {"retry_after_seconds": seconds},
            headers={"Retry-After": str(seconds)},
        )
    )


async def _internal(request: Request, exc: Exception) -> Response:
    if isinstance(exc, DATABASE_DOWN):
        return await _unavailable(request, exc)
    log.error("http.unhandled", path=request.url.path, method=request.method, exc_info=exc)
    return _response(ApiError("internal", "internal error; the gateway logged the details"))


async def error_response(request: Request, exc: Exception) -> Response:
    """The answer to any exception of a handler: what the exception handlers below give."""
    if isinstance(exc, ApiError):
        return await _api_error(request, exc)
    if isinstance(exc, HTTPException):
        return await _http_error(request, exc)
    return await _internal(request, exc)


def build_app(services: Services) -> Starlette:
    """The ASGI app for one running gateway. Resources come from ``services``, never globals."""
    app = Starlette(
        routes=[*routes, *mobile_routes, *dashboard_routes()],
        middleware=[Middleware(FrontDoor, endpoints=ENDPOINTS, on_error=error_response)],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            **dict.fromkeys(DATABASE_DOWN, _unavailable),
            Exception: _internal,
        },
    )
    app.state.services = services
    s = services.settings
    app.state.phones = PhoneDesk(
        services.hub,
        services.pipeline,
        grace=s.mobile_offline_grace,
        per_device=s.mobile_streams_per_device,
        total=s.mobile_streams_max,
    )
    install_dashboard(app)  # app.state.live: the runtime runs it as ``dashboard.live``
    return app
