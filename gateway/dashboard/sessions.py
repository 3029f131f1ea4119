"""Dashboard sign-in sessions: a signed cookie naming a server-side session, and CSRF tokens.

The cookie ``rg_session`` is ``<session id>.<HMAC>``: 32 random bytes (URL-safe base64) and
their HMAC under the server secret, so a forged or truncated cookie is refused before any
database query. The ``dashboard_sessions`` table stores only the SHA-256 of the id, the token it
was opened with, its last use and its hard expiry. A session ends when

* the operator signs out (its row is deleted: the old cookie no longer opens anything),
* it was idle for ``dashboard_idle_timeout`` seconds or reached ``dashboard_session_max_age``,
* its access token is revoked (the lookup joins the token, wherever the revocation happened).

A form's CSRF token is the HMAC of the session id under another label (nothing to store); the
sign-in form, which has no session yet, is bound to a short-lived pre-session cookie instead.
The cookies are ``HttpOnly`` and ``SameSite=Strict``, and ``Secure`` over HTTPS or when
``RELAYGATE_DASHBOARD_SECURE_COOKIE`` is set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from gateway.access.auth import Principal, principal_from_row
from gateway.services import Services
from store import dashboard as store

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "Session",
    "check_csrf",
    "check_login_csrf",
    "clear_session_cookie",
    "end_session",
    "login_csrf",
    "new_login_nonce",
    "open_session",
    "set_login_cookie",
    "set_session_cookie",
    "signed_in",
]

SESSION_COOKIE = "rg_session"
LOGIN_COOKIE = "rg_login"
LOGIN_COOKIE_AGE = 3600
"""Seconds the sign-in form's pre-session cookie lives."""


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in operator: the token's principal and the session's CSRF token."""

    principal: Principal
    csrf: str
    id_hash: bytes

    def can(self, scope: str | None) -> bool:
        """Whether the session's token carries ``scope`` (None: any signed-in operator)."""
        return scope is None or scope in self.principal.scopes


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _mac(svc: Services, label: str, value: str) -> str:
    return _b64(svc.secret.keyed_hash("dashboard", label, value))


def _session_id(svc: Services, cookie: str | None) -> str | None:
    """The session id of a well-signed cookie, else None (no database query)."""
    if not cookie or len(cookie) > 200 or not cookie.isascii():
        return None
    sid, _, mac = cookie.partition(".")
    if not sid or not mac or _unb64(sid) is None:
        return None
    return sid if hmac.compare_digest(_mac(svc, "session", sid), mac) else None


def _hash(sid: str) -> bytes:
    return hashlib.sha256(sid.encode("ascii")).digest()


async def open_session(svc: Services, principal: Principal) -> str:
    """Store a new session for ``principal``; return the cookie value. Ended sessions are
    purged here, so the table stays small without a background task."""
    sid = _b64(secrets.token_bytes(32))
    settings = svc.settings
    async with svc.pool.acquire() as conn:
        await store.purge_sessions(conn, idle_timeout=settings.dashboard_idle_timeout)
        await store.create_session(
            conn, id_hash=_hash(sid), token_id=principal.token_id, max_age=settings.dashboard_session_max_age
        )
    return f"{sid}.{_mac(svc, 'session', sid)}"


async def signed_in(request: Request) -> Session | None:
    """The request's live session, or None (no cookie, a forged one, or an ended session)."""
    svc: Services = request.app.state.services
    sid = _session_id(svc, request.cookies.get(SESSION_COOKIE))
    if sid is None:
        return None
    row = await store.session_principal(
        svc.pool, id_hash=_hash(sid), idle_timeout=svc.settings.dashboard_idle_timeout
    )
    if row is None:
        return None
    principal = principal_from_row(row)
    return Session(principal=principal, csrf=_mac(svc, "csrf", sid), id_hash=_hash(sid))


async def end_session(svc: Services, session: Session) -> None:
    """Sign out: the session row goes, so its cookie opens nothing any more."""
    await store.delete_session(svc.pool, id_hash=session.id_hash)


def check_csrf(session: Session, submitted: str | None) -> bool:
    """Whether a form's (or header's) CSRF token belongs to this session."""
    return bool(submitted) and hmac.compare_digest(session.csrf, str(submitted))


def new_login_nonce() -> str:
    """The pre-session cookie's value for a sign-in form."""
    return _b64(secrets.token_bytes(18))


def login_csrf(svc: Services, nonce: str) -> str:
    """The sign-in form's CSRF token, bound to its pre-session cookie."""
    return _mac(svc, "login", nonce)


def check_login_csrf(request: Request, submitted: str | None) -> bool:
    """Whether the sign-in form was served to this browser."""
    svc: Services = request.app.state.services
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not nonce or not submitted or len(nonce) > 64:
        return False
    return hmac.compare_digest(login_csrf(svc, nonce), str(submitted))


def _secure(request: Request) -> bool:
    svc: Services = request.app.state.services
    return request.url.scheme == "https" or svc.settings.dashboard_secure_cookie


def set_session_cookie(request: Request, response: Response, value: str) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, Secure where it can be; a browser-session
    cookie (the server ends the session, the cookie only names it)."""
    response.set_cookie(
        SESSION_COOKIE, value, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )
    response.delete_cookie(LOGIN_COOKIE, path="/")


def clear_session_cookie(request: Request, response: Response) -> None:
    """Remove the session cookie from the browser (the session row is gone already)."""
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )


def set_login_cookie(request: Request, response: Response, nonce: str) -> None:
    """The sign-in form's pre-session cookie."""
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=LOGIN_COOKIE_AGE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
