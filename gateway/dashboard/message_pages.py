"""Messages: the filtered list, one message's timeline and attempts, cancel, test sends, and a
list's batch progress."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.responses import Response

from gateway.dashboard.web import Page, action, page, redirect

__all__ = ["batch", "batch_cancel", "message", "message_cancel", "messages", "send_otp", "send_sms"]

STATUSES = ("scheduled", "queued", "dispatched", "sent", "delivered", "failed", "cancelled")
FILTERS = ("status", "to", "since", "batch_id", "cursor")


def _filters(p: Page) -> dict[str, str]:
    params = p.request.query_params
    return {name: params[name].strip() for name in FILTERS if params.get(name, "").strip()}


async def _messages_page(p: Page, **extra: Any) -> Response:
    filters = _filters(p)
    # batch_id goes to the listing as it is: a build whose listing has no such filter ignores it
    # (the batch part of the page then says "not available"), one that has it filters.
    query = dict(filters)
    if "since" in query and len(query["since"]) == 16:  # <input type="datetime-local">: minutes, UTC
        query["since"] += ":00Z"
    listing = await p.part("GET", "/api/v1/messages", query={**query, "limit": "50"})
    batch = None
    if "batch_id" in filters:
        batch = await p.part("GET", "/api/v1/batches/{batch_id}", params={"batch_id": filters["batch_id"]})
    template = "_messages_table.html" if p.request.query_params.get("fragment") else "messages.html"
    return p.render(template, listing=listing, filters=filters, statuses=STATUSES, batch=batch, **extra)


@page
async def messages(p: Page) -> Response:
    """Newest first, filtered by status, number, batch and time."""
    return await _messages_page(p)


@action
async def send_sms(p: Page, form: FormData) -> Response:
    """A test SMS from the page; on success, its own page (which follows it live)."""
    body = {"to": str(form.get("to", "")), "message": str(form.get("message", ""))}
    sent = await p.part("POST", "/api/v1/sms/send", body=body)
    if sent.ok:
        return redirect(f"/messages/{sent.value.request_id}")
    return await _messages_page(p, send_error=sent, sms_form=body)


@action
async def send_otp(p: Page, form: FormData) -> Response:
    """A test OTP from the page; on success, its SMS's page."""
    body = {
        "to": str(form.get("to", "")),
        "purpose": str(form.get("purpose", "") or "test"),
        "locale": str(form.get("locale", "") or p.lang),
    }
    sent = await p.part("POST", "/api/v1/otp/send", body=body)
    if sent.ok:
        return redirect(f"/messages/{sent.value.request_id}?otp_id={sent.value.otp_id}")
    return await _messages_page(p, otp_error=sent, otp_form=body)


async def _message_page(p: Page, **extra: Any) -> Response:
    request_id = str(p.request.path_params["request_id"])
    found = await p.part("GET", "/api/v1/messages/status", query={"request_id": request_id})
    template = "_message_detail.html" if p.request.query_params.get("fragment") else "message.html"
    return p.render(
        template, found=found, request_id=request_id, otp_id=p.request.query_params.get("otp_id"), **extra
    )


@page
async def message(p: Page) -> Response:
    """One message: status, timeline, attempts (relay, when, outcome, reason); cancel."""
    return await _message_page(p)


@action
async def message_cancel(p: Page, form: FormData) -> Response:
    """Cancel a message that has not been sent yet."""
    request_id = str(p.request.path_params["request_id"])
    done = await p.part("DELETE", "/api/v1/messages/{request_id}", params={"request_id": request_id})
    # 202 "dispatched": the relay holding it was asked; its answer (or its reports) follow live.
    notice = "cancel-requested" if done.ok and done.value.status == "dispatched" else "message-cancelled"
    return await p.finish(done, f"/messages/{request_id}", notice, _message_page)


async def _batch_page(p: Page, **extra: Any) -> Response:
    batch_id = str(p.request.path_params["batch_id"])
    found = await p.part("GET", "/api/v1/batches/{batch_id}", params={"batch_id": batch_id})
    template = "_batch.html" if p.request.query_params.get("fragment") else "batch.html"
    return p.render(template, batch=found, batch_id=batch_id, **extra)


@page
async def batch(p: Page) -> Response:
    """A queued list's batch progress, following it live; cancel what has not been sent."""
    return await _batch_page(p)


@action
async def batch_cancel(p: Page, form: FormData) -> Response:
    """Cancel every item of the batch that was not sent yet."""
    batch_id = str(p.request.path_params["batch_id"])
    done = await p.part("POST", "/api/v1/batches/{batch_id}/cancel", params={"batch_id": batch_id})
    return await p.finish(done, f"/batches/{batch_id}", "batch-cancelled", _batch_page)
