"""The SMSGate Android app's "private server" API under ``/api/mobile/v1`` (docs/phones.md).

Its own small route list (:data:`routes`), mounted by :func:`gateway.app.build_app`: these
routes use the app's auth schemes, not relaygate access tokens, so they are not in the
customer ``ENDPOINTS`` table or the OpenAPI document. The phones themselves are relays like
any other: :class:`~gateway.mobile.link.PhoneLink` is their hub link.
"""

from __future__ import annotations

from starlette.routing import Route

from gateway.mobile import handlers as h

__all__ = ["MOBILE_PREFIX", "routes"]

MOBILE_PREFIX = "/api/mobile/v1"

routes: list[Route] = [
    Route(f"{MOBILE_PREFIX}/device", h.register, methods=["POST"]),
    Route(f"{MOBILE_PREFIX}/device", h.update_device, methods=["PATCH"]),
    Route(f"{MOBILE_PREFIX}/device", h.get_device, methods=["GET"]),
    Route(f"{MOBILE_PREFIX}/message", h.get_messages, methods=["GET"]),
    Route(f"{MOBILE_PREFIX}/message", h.report_states, methods=["PATCH"]),
    Route(f"{MOBILE_PREFIX}/events", h.open_events, methods=["GET"]),
    Route(f"{MOBILE_PREFIX}/settings", h.get_settings, methods=["GET"]),
    Route(f"{MOBILE_PREFIX}/webhooks", h.get_webhooks, methods=["GET"]),
    Route(f"{MOBILE_PREFIX}/inbound/{{device_id}}", h.inbound, methods=["POST"]),
    Route(
        f"{MOBILE_PREFIX}/{{rest:path}}",
        h.not_offered,
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    ),
]
