"""Sign in with an access token, sign out, and the language switcher."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.access.ratelimit import KeyedTokenBuckets
from gateway.dashboard.i18n import LANG_COOKIE, LANGUAGES, choose_language, translator
from gateway.dashboard.sessions import (
    check_csrf,
    check_login_csrf,
    clear_session_cookie,
    end_session,
    login_csrf,
    new_login_nonce,
    open_session,
    set_login_cookie,
    set_session_cookie,
    signed_in,
)
from gateway.dashboard.web import csrf_refused, read_form, security_headers, templates
from gateway.errors import ApiError
from gateway.logs import get_logger
from gateway.services import Services

__all__ = ["choose_lang", "signin_form", "signin_submit", "signout"]

log = get_logger("gateway.dashboard")

SIGNIN_RATE = 0.5
"""Sign-in attempts per second per client address (after a burst of :data:`SIGNIN_BURST`)."""
SIGNIN_BURST = 10


def signin_limits() -> KeyedTokenBuckets:
    """The per-address sign-in buckets of one app (``app.state.signin_limits``)."""
    return KeyedTokenBuckets(SIGNIN_RATE, SIGNIN_BURST, time.monotonic)


def _signin_wait(request: Request) -> float:
    """Seconds this client must wait before another sign-in attempt (0: go ahead)."""
    limits: KeyedTokenBuckets = request.app.state.signin_limits
    return limits.take(request.client.host if request.client else "unknown")


def _local(target: str | None) -> str:
    """A same-site path to go to after signing in (anything else: the overview)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def _signin_page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    svc: Services = request.app.state.services
    lang = choose_language(request)
    nonce = new_login_nonce()
    response = templates.TemplateResponse(
        request,
        "signin.html",
        {
            "_": translator(lang),
            "lang": lang,
            "languages": LANGUAGES,
            "here": "/signin",
            "csrf": login_csrf(svc, nonce),
            "next": _local(request.query_params.get("next")),
            "error": error,
        },
        status_code=status,
    )
    set_login_cookie(request, response, nonce)
    return security_headers(response)


async def signin_form(request: Request) -> Response:
    """``GET /signin``: one token field."""
    if await signed_in(request) is not None:
        return security_headers(RedirectResponse("/", 303))
    return _signin_page(request)


async def signin_submit(request: Request) -> Response:
    """``POST /signin``: a valid access token opens a session; anything else is refused."""
    svc: Services = request.app.state.services
    _ = translator(choose_language(request))
    try:
        form = await read_form(request)
    except ApiError:
        return _signin_page(request, error=_("That token was not accepted."), status=401)
    if not check_login_csrf(request, str(form.get("csrf", ""))):
        return csrf_refused(request)
    wait = _signin_wait(request)
    if wait > 0:
        log.warning("dashboard.signin_limited", client=request.client.host if request.client else None)
        response = _signin_page(request, error=_("Too many sign-in attempts; wait a minute."), status=429)
        response.headers["Retry-After"] = str(max(1, int(wait + 0.999)))
        return response
    token = str(form.get("token", "")).strip()
    try:
        principal = await svc.authenticator.authenticate(f"Bearer {token}")
    except ApiError:
        log.info("dashboard.signin_refused")
        return _signin_page(request, error=_("That token was not accepted."), status=401)
    cookie = await open_session(svc, principal)
    log.info("dashboard.signed_in", account_id=principal.account.id, token_id=principal.token_id)
    response = RedirectResponse(_local(str(form.get("next", "/"))), 303)
    set_session_cookie(request, response, cookie)
    return security_headers(response)


async def signout(request: Request) -> Response:
    """``POST /signout``: the session ends on the server; the cookie is dropped too."""
    session = await signed_in(request)
    svc: Services = request.app.state.services
    if session is not None:
        form = await read_form(request)
        if not check_csrf(session, str(form.get("csrf", ""))):
            return csrf_refused(request)
        await end_session(svc, session)
        log.info("dashboard.signed_out", account_id=session.principal.account.id)
    response = RedirectResponse("/signin", 303)
    clear_session_cookie(request, response)
    return security_headers(response)


async def choose_lang(request: Request) -> Response:
    """``GET /lang/{code}?next=…``: remember the language (a preference, not an action)."""
    code = str(request.path_params["code"])
    response = RedirectResponse(_local(request.query_params.get("next")), 303)
    if code in LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, path="/", samesite="lax", httponly=True)
    return security_headers(response)
