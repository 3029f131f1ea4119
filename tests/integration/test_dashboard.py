"""The dashboard over plain HTTP (no browser): sign-in refusals, cookie flags, the idle timeout,
hostile form values, security headers, and the pages' use of the API's own rules."""

from __future__ import annotations

import re

import aiohttp
import asyncpg

from tests.harness import RunningGateway, start_gateway

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def origin(gateway: RunningGateway) -> str:
    """``http://127.0.0.1:PORT``."""
    return f"http://127.0.0.1:{gateway.gateway.http_port}"


async def sign_in(session: aiohttp.ClientSession, gateway: RunningGateway, token: str) -> tuple[str, str]:
    """Sign in like a browser; return ``(session cookie, CSRF token of the overview's forms)``."""
    async with session.get(origin(gateway) + "/signin") as resp:
        login_cookie = resp.cookies["rg_login"].value
        csrf = CSRF.findall(await resp.text())[0]
    async with session.post(
        origin(gateway) + "/signin",
        data={"csrf": csrf, "token": token, "next": "/"},
        headers={"Cookie": f"rg_login={login_cookie}"},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 303, await resp.text()
        set_cookie = resp.headers.getall("Set-Cookie")
        cookie = resp.cookies["rg_session"].value
    assert any(
        "rg_session=" in c and "httponly" in c.lower() and "samesite=strict" in c.lower() for c in set_cookie
    )
    async with session.get(origin(gateway) + "/", headers={"Cookie": f"rg_session={cookie}"}) as resp:
        assert resp.status == 200
        return cookie, CSRF.findall(await resp.text())[0]


async def test_sign_in_needs_its_form_and_a_real_token(
    gateway: RunningGateway, account: tuple[str, str], session: aiohttp.ClientSession
) -> None:
    """A sign-in post without the form's CSRF pair is refused (403); a wrong token gets 401 and no
    session cookie; the right one a cookie without ``Secure`` on plain HTTP."""
    async with session.post(
        origin(gateway) + "/signin", data={"token": account[1]}, allow_redirects=False
    ) as resp:
        assert resp.status == 403 and "rg_session" not in resp.cookies
    async with session.get(origin(gateway) + "/signin") as resp:
        login_cookie = resp.cookies["rg_login"].value
        csrf = CSRF.findall(await resp.text())[0]
    for token in ("rgat_nope", account[1] + "x", ""):
        async with session.post(
            origin(gateway) + "/signin",
            data={"csrf": csrf, "token": token},
            headers={"Cookie": f"rg_login={login_cookie}"},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 401 and "rg_session" not in resp.cookies
    cookie, _ = await sign_in(session, gateway, account[1])
    assert cookie


async def test_secure_cookie_when_configured(database_url: str, session: aiohttp.ClientSession) -> None:
    """``RELAYGATE_DASHBOARD_SECURE_COOKIE`` marks the session cookie ``Secure`` on plain HTTP."""
    from tests.harness import make_account

    running = await start_gateway(database_url, dashboard_secure_cookie=True)
    try:
        _, token = await make_account(database_url)
        async with session.get(origin(running) + "/signin") as resp:
            login = resp.headers.getall("Set-Cookie")
            csrf = CSRF.findall(await resp.text())[0]
            login_cookie = resp.cookies["rg_login"].value
        assert all("Secure" in c for c in login)
        async with session.post(
            origin(running) + "/signin",
            data={"csrf": csrf, "token": token},
            headers={"Cookie": f"rg_login={login_cookie}"},
            allow_redirects=False,
        ) as resp:
            assert any("rg_session=" in c and "Secure" in c for c in resp.headers.getall("Set-Cookie"))
    finally:
        await running.stop()


async def test_idle_session_ends(
    gateway: RunningGateway, account: tuple[str, str], session: aiohttp.ClientSession
) -> None:
    """A session unused for longer than the idle timeout opens nothing any more."""
    cookie, _ = await sign_in(session, gateway, account[1])
    conn = await asyncpg.connect(gateway.database_url)
    try:  # the clock is the database's: move the session's last use back instead of waiting
        await conn.execute("UPDATE dashboard_sessions SET last_seen_at = now() - interval '31 minutes'")
    finally:
        await conn.close()
    async with session.get(
        origin(gateway) + "/relays", headers={"Cookie": f"rg_session={cookie}"}, allow_redirects=False
    ) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/signin?next=/relays"


async def test_hostile_form_values_are_refused_by_the_api_rules(
    gateway: RunningGateway, account: tuple[str, str], session: aiohttp.ClientSession
) -> None:
    """Form values the API would refuse (NUL, a bad number, an oversized body) are refused on the
    page the same way, never a 5xx, and store nothing."""
    cookie, csrf = await sign_in(session, gateway, account[1])
    headers = {"Cookie": f"rg_session={cookie}"}
    cases = [
        ("/messages/send", {"to": "+998901234567", "message": "hi\x00there"}, "message"),
        ("/messages/send", {"to": "not a number", "message": "hi"}, "to"),
        ("/recipients", {"name": "A\x00", "phone": "+998901234567"}, "name"),
        ("/tokens", {"name": "x", "scopes": "not.a.scope"}, "scopes"),
        ("/webhooks", {"url": "ftp://example.com/x", "events": "message.sent"}, "url"),
    ]
    for path, form, field in cases:
        async with session.post(origin(gateway) + path, data={**form, "csrf": csrf}, headers=headers) as resp:
            text = await resp.text()
            assert resp.status == 200, (path, resp.status)
            assert 'role="alert"' in text and field in text, (path, text[:500])
    async with session.post(
        origin(gateway) + "/messages/send", data={"csrf": csrf, "message": "x" * 300_000}, headers=headers
    ) as resp:
        assert resp.status == 413
    conn = await asyncpg.connect(gateway.database_url)
    try:
        counts = [
            await conn.fetchval(f"SELECT count(*) FROM {t}")
            for t in ("messages", "recipients", "webhook_endpoints")
        ]
    finally:
        await conn.close()
    assert counts == [0, 0, 0]


async def test_pages_carry_security_headers_and_unknown_paths_stay_json(
    gateway: RunningGateway, account: tuple[str, str], session: aiohttp.ClientSession
) -> None:
    """Dashboard pages forbid other sites' assets and framing and are not cached; a path that is
    neither a page nor an API route still gets the API's JSON 404."""
    cookie, _ = await sign_in(session, gateway, account[1])
    async with session.get(origin(gateway) + "/messages", headers={"Cookie": f"rg_session={cookie}"}) as resp:
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["Cache-Control"] == "no-store"
    async with session.get(origin(gateway) + "/static/dashboard/dashboard.js") as resp:
        assert resp.status == 200 and "EventSource" in await resp.text()
    async with session.get(origin(gateway) + "/no-such-page") as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
