"""Webhooks (endpoints, secrets, tests, the delivery log, retries) and Tokens pages."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.responses import Response

from gateway.access.scopes import ALL_SCOPES
from gateway.dashboard.web import Page, action, page, redirect
from gateway.webhooks.signing import EVENT_TYPES

__all__ = [
    "delivery",
    "delivery_retry",
    "token_create",
    "token_revoke",
    "tokens",
    "webhook_create",
    "webhook_delete",
    "webhook_rotate",
    "webhook_test",
    "webhook_update",
    "webhooks",
]


def _wid(p: Page) -> dict[str, str]:
    return {"webhook_id": str(p.request.path_params["webhook_id"])}


async def _webhooks_page(p: Page, **extra: Any) -> Response:
    endpoints = await p.part("GET", "/api/v1/webhooks", query={"limit": "200"})
    query = {k: p.request.query_params[k] for k in ("status", "webhook_id") if p.request.query_params.get(k)}
    deliveries = await p.part("GET", "/api/v1/webhooks/deliveries", query={**query, "limit": "50"})
    template = "_deliveries_table.html" if p.request.query_params.get("fragment") else "webhooks.html"
    return p.render(
        template, endpoints=endpoints, deliveries=deliveries, event_types=EVENT_TYPES, filters=query, **extra
    )


@page
async def webhooks(p: Page) -> Response:
    """Endpoints and the delivery log."""
    return await _webhooks_page(p)


@action
async def webhook_create(p: Page, form: FormData) -> Response:
    """Register an endpoint; its secret is shown once."""
    body = {
        "url": str(form.get("url", "")),
        "events": [str(e) for e in form.getlist("events")] or list(EVENT_TYPES),
        "description": str(form.get("description", "")),
    }
    created = await p.part("POST", "/api/v1/webhooks", body=body)
    return await _webhooks_page(p, secret=created, secret_text=p._("Endpoint created."))


@action
async def webhook_update(p: Page, form: FormData) -> Response:
    """Change an endpoint's URL, events, description or enabled state."""
    body: dict[str, Any] = {
        "url": str(form.get("url", "")),
        "description": str(form.get("description", "")),
        "enabled": form.get("enabled") == "on",
    }
    events = [str(e) for e in form.getlist("events")]
    if events:
        body["events"] = events
    done = await p.part("PATCH", "/api/v1/webhooks/{webhook_id}", params=_wid(p), body=body)
    return await p.finish(done, "/webhooks", "webhook-saved", _webhooks_page)


@action
async def webhook_rotate(p: Page, form: FormData) -> Response:
    """A new signing secret, shown once (the old one keeps working for a day)."""
    rotated = await p.part("POST", "/api/v1/webhooks/{webhook_id}/rotate-secret", params=_wid(p))
    return await _webhooks_page(p, secret=rotated, secret_text=p._("New secret created."))


@action
async def webhook_test(p: Page, form: FormData) -> Response:
    """Queue a ``webhook.test`` event to one endpoint."""
    done = await p.part("POST", "/api/v1/webhooks/{webhook_id}/test", params=_wid(p))
    return await p.finish(done, "/webhooks", "webhook-tested", _webhooks_page)


@action
async def webhook_delete(p: Page, form: FormData) -> Response:
    """Remove an endpoint."""
    done = await p.part("DELETE", "/api/v1/webhooks/{webhook_id}", params=_wid(p))
    return await p.finish(done, "/webhooks", "webhook-removed", _webhooks_page)


async def _delivery_page(p: Page, **extra: Any) -> Response:
    delivery_id = str(p.request.path_params["delivery_id"])
    found = await p.part(
        "GET", "/api/v1/webhooks/deliveries/{delivery_id}", params={"delivery_id": delivery_id}
    )
    return p.render("delivery.html", delivery=found, delivery_id=delivery_id, **extra)


@page
async def delivery(p: Page) -> Response:
    """One delivery: payload and every attempt (status, latency, response excerpt)."""
    return await _delivery_page(p)


@action
async def delivery_retry(p: Page, form: FormData) -> Response:
    """Redeliver now."""
    delivery_id = str(p.request.path_params["delivery_id"])
    done = await p.part(
        "POST", "/api/v1/webhooks/deliveries/{delivery_id}/retry", params={"delivery_id": delivery_id}
    )
    return await p.finish(done, f"/webhooks/deliveries/{delivery_id}", "retry-queued", _delivery_page)


async def _tokens_page(p: Page, **extra: Any) -> Response:
    listing = await p.part("GET", "/api/v1/tokens", query={"limit": "200"})
    return p.render("tokens.html", listing=listing, scopes=ALL_SCOPES, **extra)


@page
async def tokens(p: Page) -> Response:
    """The account's tokens: create (shown once), revoke."""
    return await _tokens_page(p)


@action
async def token_create(p: Page, form: FormData) -> Response:
    """Create a token with the chosen scopes; the token is shown once."""
    body = {"name": str(form.get("name", "")), "scopes": [str(s) for s in form.getlist("scopes")]}
    created = await p.part("POST", "/api/v1/tokens", body=body)
    return await _tokens_page(p, created=created)


@action
async def token_revoke(p: Page, form: FormData) -> Response:
    """Revoke a token (its dashboard sessions end with it)."""
    token_id = str(p.request.path_params["token_id"])
    done = await p.part("DELETE", "/api/v1/tokens/{token_id}", params={"token_id": token_id})
    if done.ok and token_id == p.session.principal.token_id:
        return redirect("/signin")
    return await p.finish(done, "/tokens", "token-revoked", _tokens_page)
