"""What every dashboard page shares: the signed-in :class:`Page`, rendering, forms and CSRF.

``@page`` handlers answer GET for a signed-in operator (others are sent to the sign-in page);
``@action`` handlers answer a POSTed form after checking its CSRF token. Both get a
:class:`Page`, whose :meth:`Page.part` calls an API handler through
:func:`gateway.dashboard.calls.call_api` and keeps its answer, its error or "not available" for
the template, so one failing part never blanks the page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from gateway.bodies import read_body
from gateway.dashboard.calls import NotAvailable, call_api, has_endpoint
from gateway.dashboard.i18n import LANGUAGES, choose_language, translator
from gateway.dashboard.sessions import Session, check_csrf, signed_in
from gateway.errors import ApiError
from gateway.ids import id_floor
from gateway.services import Services

__all__ = ["NAV", "Page", "Part", "action", "page", "security_headers", "templates"]

_HERE = Path(__file__).parent
templates = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
)

NAV: list[tuple[str, str, str | None]] = [
    ("/", "Overview", "account.read"),
    ("/relays", "Relays", "account.read"),
    ("/messages", "Messages", "messages.read"),
    ("/queue", "Queue", None),
    ("/webhooks", "Webhooks", "webhooks.manage"),
    ("/recipients", "Recipients", "recipients.read"),
    ("/tokens", "Tokens", "tokens.manage"),
]
"""Navigation: path, label, the scope a token needs to see it (None: every operator)."""

ERROR_TITLES: dict[str, str] = {
    "unauthorized": "Not signed in",
    "forbidden": "Not allowed",
    "not_found": "Not found",
    "conflict": "Conflict",
    "validation_error": "Check the form",
    "invalid_device": "That relay cannot be used",
    "rate_limited": "Too many requests",
    "queue_blocked": "The queue is not accepting messages",
    "subscription_expired": "The subscription has expired",
    "payload_too_large": "Too large",
    "unavailable": "The database is unreachable",
    "internal": "Something went wrong",
    "method_not_allowed": "Not allowed",
}
"""Error code → the page's heading for it (the API's English message follows)."""

NOTICES: dict[str, str] = {
    "relay-saved": "Relay saved.",
    "relay-unpaired": "Relay unpaired.",
    "queue-paused": "Queue paused.",
    "queue-resumed": "Queue resumed.",
    "message-cancelled": "Message cancelled.",
    "cancel-requested": "The relay holding it was asked to cancel it.",
    "webhook-saved": "Endpoint saved.",
    "webhook-tested": "Test event queued.",
    "webhook-removed": "Endpoint removed.",
    "retry-queued": "Retry queued.",
    "token-revoked": "Token revoked.",
    "recipient-added": "Recipient added.",
    "recipient-saved": "Recipient saved.",
    "recipient-removed": "Recipient removed.",
    "members-added": "Members added.",
    "member-removed": "Member removed.",
    "list-queued": "List queued.",
    "batch-cancelled": "Batch cancelled.",
}
"""What a page says after a form succeeded (``?notice=<key>`` of the redirect that follows it)."""

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def security_headers(response: Response) -> Response:
    """Headers of every dashboard answer: nothing from other sites, no framing, no caching."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


@dataclass
class Part:
    """One API answer a page shows: ``value``, or ``error`` (text), or ``unavailable``."""

    value: Any = None
    error: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    unavailable: bool = False

    @property
    def ok(self) -> bool:
        """Whether the call answered."""
        return self.error is None and not self.unavailable


@dataclass
class Page:
    """A request of a signed-in operator: language, session and access to the API handlers."""

    request: Request
    session: Session
    lang: str

    @property
    def services(self) -> Services:
        """The gateway's services."""
        services: Services = self.request.app.state.services
        return services

    def _(self, text: str) -> str:
        """``text`` in the page's language."""
        return translator(self.lang)(text)

    def can(self, scope: str | None) -> bool:
        """Whether the session's token carries ``scope``."""
        return self.session.can(scope)

    async def api(self, method: str, path: str, **kw: Any) -> Any:
        """The answer of the API handler ``method path`` (ApiError / NotAvailable propagate)."""
        return await call_api(self.request, self.session.principal, method, path, **kw)

    async def part(self, method: str, path: str, **kw: Any) -> Part:
        """The answer of ``method path`` as a :class:`Part` (errors become text)."""
        try:
            return Part(value=await self.api(method, path, **kw))
        except NotAvailable:
            return Part(error=self._("Not available in this version"), unavailable=True)
        except ApiError as exc:
            return Part(error=self.error_text(exc), fields=_fields(exc))

    def error_text(self, exc: ApiError) -> str:
        """A failure as one line: the translated heading, then the API's message."""
        title = self._(ERROR_TITLES.get(exc.code, "Something went wrong"))
        return f"{title}: {exc.message}"

    async def finish(
        self, done: Part, path: str, notice: str, fallback: Callable[..., Awaitable[Response]]
    ) -> Response:
        """After a form: on success a redirect to ``path`` saying ``NOTICES[notice]`` (so a
        reload does not post again); on failure ``fallback(self, notice=done)``, the error shown."""
        if done.ok:
            return redirect(f"{path}?notice={notice}")
        return await fallback(self, notice=done)

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        """``template`` with the page's common context (fragments render alone)."""
        key = self.request.query_params.get("notice", "")
        if "notice" not in context and key in NOTICES:
            context.update(notice=Part(value=True), notice_text=self._(NOTICES[key]))
        nav = [(path, self._(label)) for path, label, scope in NAV if self.can(scope)]
        response = templates.TemplateResponse(
            self.request,
            template,
            {
                "_": self._,
                "lang": self.lang,
                "languages": LANGUAGES,
                "nav": nav,
                "here": self.request.url.path,
                "session": self.session,
                "account": self.session.principal.account,
                "csrf": self.session.csrf,
                "can": self.can,
                "has_endpoint": has_endpoint,
                "events_since": id_floor("evt", self.services.clock.time() - 1.0),
                **context,
            },
            status_code=status,
        )
        return security_headers(response)


def _fields(exc: ApiError) -> dict[str, str]:
    fields = exc.details.get("fields")
    return {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {}


def signin_redirect(request: Request) -> Response:
    """To the sign-in page, coming back here afterwards."""
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return security_headers(RedirectResponse(f"/signin?next={target}" if target != "/" else "/signin", 303))


PageHandler = Callable[[Page], Awaitable[Response]]
ActionHandler = Callable[[Page, FormData], Awaitable[Response]]


def page(handler: PageHandler) -> Callable[[Request], Awaitable[Response]]:
    """A GET page for signed-in operators."""

    async def run(request: Request) -> Response:
        session = await signed_in(request)
        if session is None:
            if request.query_params.get("fragment"):
                return security_headers(Response("signed out", status_code=401))
            return signin_redirect(request)
        return await handler(Page(request, session, choose_language(request)))

    run.__name__ = run.__qualname__ = handler.__name__
    return run


async def read_form(request: Request) -> FormData:
    """A urlencoded form body (within the API's body limit)."""
    svc: Services = request.app.state.services
    raw = await read_body(request, svc.settings.max_body_bytes)
    pairs: list[tuple[str, str | UploadFile]] = list(
        parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
    )
    return FormData(pairs)


def csrf_refused(request: Request) -> Response:
    """403 for a form without this session's CSRF token."""
    _ = translator(choose_language(request))
    text = _("This form did not come from this dashboard session. Reload the page and try again.")
    return security_headers(HTMLResponse(f"<!doctype html><title>403</title><p>{text}</p>", status_code=403))


def action(handler: ActionHandler) -> Callable[[Request], Awaitable[Response]]:
    """A POSTed form of a signed-in operator, refused (403) without the session's CSRF token."""

    async def run(request: Request) -> Response:
        session = await signed_in(request)
        if session is None:  # not back to a form's address: it answers POST only
            return security_headers(RedirectResponse("/signin", 303))
        try:
            form = await read_form(request)
        except ApiError:
            return security_headers(Response("form too large", status_code=413))
        if not check_csrf(session, str(form.get("csrf", ""))):
            return csrf_refused(request)
        return await handler(Page(request, session, choose_language(request)), form)

    run.__name__ = run.__qualname__ = handler.__name__
    return run


def redirect(path: str) -> Response:
    """303 to ``path`` (after a form)."""
    return security_headers(RedirectResponse(path, 303))
