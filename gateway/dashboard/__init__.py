"""The operator dashboard served by the gateway at ``/`` (same port as the API).

Server-rendered pages (Jinja2 through Starlette's templating, a little plain JavaScript, every
asset served from ``/static/dashboard/``) that do everything through the API's own handlers
(:mod:`gateway.dashboard.calls`); sign-in sessions and CSRF in :mod:`.sessions`; live updates as
Server-Sent Events from the outbox in :mod:`.live`; languages in :mod:`.i18n`.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.dashboard import admin_pages, fleet_pages, message_pages, recipient_pages, signin
from gateway.dashboard.live import LiveFeed, event_stream

__all__ = ["LiveFeed", "install", "routes"]


def install(app: Starlette) -> None:
    """The dashboard's per-app state: the live feed (run by the runtime as ``dashboard.live``)
    and the per-address sign-in limit."""
    app.state.live = LiveFeed()
    app.state.signin_limits = signin.signin_limits()


def _get(path: str, handler: object) -> Route:
    return Route(path, handler, methods=["GET"])  # type: ignore[arg-type]


def _post(path: str, handler: object) -> Route:
    return Route(path, handler, methods=["POST"])  # type: ignore[arg-type]


def routes() -> list[BaseRoute]:
    """The dashboard's routes (mounted after the API's, so they never shadow it)."""
    return [
        _get("/", fleet_pages.overview),
        _get("/signin", signin.signin_form),
        _post("/signin", signin.signin_submit),
        _post("/signout", signin.signout),
        _get("/lang/{code}", signin.choose_lang),
        _get("/events", event_stream),
        _get("/relays", fleet_pages.relays),
        _post("/relays/pair", fleet_pages.relay_pair),
        _post("/relays/{device_id}", fleet_pages.relay_update),
        _post("/relays/{device_id}/unpair", fleet_pages.relay_unpair),
        _get("/queue", fleet_pages.queue),
        _post("/queue/pause", fleet_pages.queue_pause),
        _post("/queue/resume", fleet_pages.queue_resume),
        _get("/messages", message_pages.messages),
        _post("/messages/send", message_pages.send_sms),
        _post("/messages/otp", message_pages.send_otp),
        _get("/messages/{request_id}", message_pages.message),
        _post("/messages/{request_id}/cancel", message_pages.message_cancel),
        _get("/batches/{batch_id}", message_pages.batch),
        _post("/batches/{batch_id}/cancel", message_pages.batch_cancel),
        _get("/webhooks", admin_pages.webhooks),
        _post("/webhooks", admin_pages.webhook_create),
        _get("/webhooks/deliveries/{delivery_id}", admin_pages.delivery),
        _post("/webhooks/deliveries/{delivery_id}/retry", admin_pages.delivery_retry),
        _post("/webhooks/{webhook_id}", admin_pages.webhook_update),
        _post("/webhooks/{webhook_id}/rotate", admin_pages.webhook_rotate),
        _post("/webhooks/{webhook_id}/test", admin_pages.webhook_test),
        _post("/webhooks/{webhook_id}/delete", admin_pages.webhook_delete),
        _get("/recipients", recipient_pages.recipients),
        _post("/recipients", recipient_pages.recipient_create),
        _post("/recipients/import", recipient_pages.recipient_import),
        _post("/recipients/lists", recipient_pages.list_create),
        _get("/recipients/lists/{list_id}", recipient_pages.list_page),
        _post("/recipients/lists/{list_id}/members", recipient_pages.list_members_add),
        _post("/recipients/lists/{list_id}/members/remove", recipient_pages.list_members_remove),
        _post("/recipients/lists/{list_id}/queue", recipient_pages.list_queue),
        _get("/recipients/{recipient_id}", recipient_pages.recipient),
        _post("/recipients/{recipient_id}", recipient_pages.recipient_update),
        _post("/recipients/{recipient_id}/delete", recipient_pages.recipient_delete),
        _get("/tokens", admin_pages.tokens),
        _post("/tokens", admin_pages.token_create),
        _post("/tokens/{token_id}/revoke", admin_pages.token_revoke),
        Mount(
            "/static/dashboard",
            StaticFiles(directory=Path(__file__).parent / "static"),
            name="dashboard-static",
        ),
    ]
