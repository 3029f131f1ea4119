"""Recipients and lists: search, add, edit, import a CSV, lists and members, queue a list."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.dashboard.calls import NotAvailable, call_api
from gateway.dashboard.i18n import choose_language, translator
from gateway.dashboard.sessions import check_csrf, signed_in
from gateway.dashboard.web import Page, action, page, redirect, security_headers
from gateway.errors import ApiError

__all__ = [
    "list_create",
    "list_members_add",
    "list_members_remove",
    "list_page",
    "list_queue",
    "recipient",
    "recipient_create",
    "recipient_delete",
    "recipient_import",
    "recipient_update",
    "recipients",
]


def _tags(raw: str) -> list[str]:
    return [t.strip() for t in raw.split(",") if t.strip()]


async def _recipients_page(p: Page, **extra: Any) -> Response:
    params = p.request.query_params
    query = {k: params[k] for k in ("q", "tag", "cursor") if params.get(k)}
    found = await p.part("GET", "/api/v1/recipients", query={**query, "limit": "50"})
    lists = await p.part("GET", "/api/v1/recipient-lists", query={"limit": "200"})
    return p.render("recipients.html", found=found, lists=lists, search=query, **extra)


@page
async def recipients(p: Page) -> Response:
    """Search the directory; add; import; lists."""
    return await _recipients_page(p)


@action
async def recipient_create(p: Page, form: FormData) -> Response:
    """Add one recipient."""
    body: dict[str, Any] = {
        "name": str(form.get("name", "")),
        "phone": str(form.get("phone", "")),
        "tags": _tags(str(form.get("tags", ""))),
    }
    done = await p.part("POST", "/api/v1/recipients", body=body)
    return await p.finish(done, "/recipients", "recipient-added", _recipients_page)


async def _recipient_page(p: Page, **extra: Any) -> Response:
    rid = str(p.request.path_params["recipient_id"])
    found = await p.part("GET", "/api/v1/recipients/{recipient_id}", params={"recipient_id": rid})
    return p.render("recipient.html", found=found, recipient_id=rid, **extra)


@page
async def recipient(p: Page) -> Response:
    """One recipient, editable."""
    return await _recipient_page(p)


@action
async def recipient_update(p: Page, form: FormData) -> Response:
    """Change a recipient (opt-out too)."""
    rid = str(p.request.path_params["recipient_id"])
    body = {
        "name": str(form.get("name", "")),
        "phone": str(form.get("phone", "")),
        "tags": _tags(str(form.get("tags", ""))),
        "opted_out": form.get("opted_out") == "on",
    }
    done = await p.part("PATCH", "/api/v1/recipients/{recipient_id}", params={"recipient_id": rid}, body=body)
    return await p.finish(done, f"/recipients/{rid}", "recipient-saved", _recipient_page)


@action
async def recipient_delete(p: Page, form: FormData) -> Response:
    """Remove a recipient."""
    rid = str(p.request.path_params["recipient_id"])
    done = await p.part("DELETE", "/api/v1/recipients/{recipient_id}", params={"recipient_id": rid})
    return await p.finish(done, "/recipients", "recipient-removed", _recipient_page)


async def recipient_import(request: Request) -> Response:
    """``POST /recipients/import``: the page's script sends the CSV file as the body (so the
    browser can show upload progress) with the CSRF token in ``X-CSRF-Token``; the answer is the
    import API's report as JSON, or ``{"error": "..."}``."""
    session = await signed_in(request)
    _ = translator(choose_language(request))
    if session is None:
        return security_headers(JSONResponse({"error": _("Not signed in")}, status_code=401))
    if not check_csrf(session, request.headers.get("x-csrf-token")):
        return security_headers(JSONResponse({"error": _("Not allowed")}, status_code=403))
    mode = "all_or_nothing" if request.query_params.get("mode") == "all_or_nothing" else "partial"
    try:
        report = await call_api(
            request, session.principal, "POST", "/api/v1/recipients/import", query={"mode": mode}
        )
    except NotAvailable:
        return security_headers(JSONResponse({"error": _("Not available in this version")}, status_code=404))
    except ApiError as exc:
        return security_headers(JSONResponse({"error": exc.message}, status_code=exc.status))
    data = {
        "imported": report.imported,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "errors_total": report.errors_total,
        "errors": [{"line": e.line, "reason": e.reason} for e in report.errors[:20]],
    }
    return security_headers(JSONResponse(data))


@action
async def list_create(p: Page, form: FormData) -> Response:
    """Create a list."""
    done = await p.part("POST", "/api/v1/recipient-lists", body={"name": str(form.get("name", ""))})
    if done.ok:
        return redirect(f"/recipients/lists/{done.value.list.id}")
    return await _recipients_page(p, notice=done)


def _lid(p: Page) -> dict[str, str]:
    return {"list_id": str(p.request.path_params["list_id"])}


async def _list_page(p: Page, **extra: Any) -> Response:
    found = await p.part("GET", "/api/v1/recipient-lists/{list_id}", params=_lid(p))
    members = await p.part(
        "GET", "/api/v1/recipient-lists/{list_id}/members", params=_lid(p), query={"limit": "200"}
    )
    return p.render("list.html", found=found, members=members, list_id=_lid(p)["list_id"], **extra)


@page
async def list_page(p: Page) -> Response:
    """A list and its members."""
    return await _list_page(p)


def _phones(raw: str) -> list[str]:
    return [x.strip() for x in raw.replace(",", "\n").splitlines() if x.strip()]


@action
async def list_members_add(p: Page, form: FormData) -> Response:
    """Add members by number."""
    body = {"phones": _phones(str(form.get("phones", "")))}
    done = await p.part("POST", "/api/v1/recipient-lists/{list_id}/members", params=_lid(p), body=body)
    return await p.finish(done, f"/recipients/lists/{_lid(p)['list_id']}", "members-added", _list_page)


@action
async def list_members_remove(p: Page, form: FormData) -> Response:
    """Remove one member."""
    body = {"recipient_ids": [str(form.get("recipient_id", ""))]}
    done = await p.part("DELETE", "/api/v1/recipient-lists/{list_id}/members", params=_lid(p), body=body)
    return await p.finish(done, f"/recipients/lists/{_lid(p)['list_id']}", "member-removed", _list_page)


@action
async def list_queue(p: Page, form: FormData) -> Response:
    """Queue the whole list (each number its own message); then follow its batch."""
    body = {
        "list_id": _lid(p)["list_id"],
        "message": str(form.get("message", "")),
        "priority": str(form.get("priority", "") or "low"),
    }
    done = await p.part("POST", "/api/v1/recipient-lists/queue", body=body)
    batch_id = getattr(done.value, "batch_id", None) if done.ok else None
    if batch_id:
        return redirect(f"/batches/{batch_id}")
    return await p.finish(done, f"/recipients/lists/{_lid(p)['list_id']}", "list-queued", _list_page)
