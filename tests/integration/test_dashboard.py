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


async def test_every_form_changes_what_the_api_shows(
    gateway: RunningGateway, account: tuple[str, str], session: aiohttp.ClientSession
) -> None:
    """Each form of the pages (relay settings and unpairing, webhook edit/rotate/delete, recipient
    edit/delete, list members, token revoke, test OTP) does what the matching API call does, and
    then redirects to its page saying so."""
    from tests.harness import ApiClient

    api = ApiClient(session, gateway.base_url, account[1])
    cookie, csrf = await sign_in(session, gateway, account[1])
    headers = {"Cookie": f"rg_session={cookie}"}

    async def post(path: str, **form: str | list[str]) -> str:
        async with session.post(
            origin(gateway) + path,
            data=[(k, v) for k, vs in form.items() for v in ([vs] if isinstance(vs, str) else vs)]
            + [("csrf", csrf)],
            headers=headers,
            allow_redirects=False,
        ) as resp:
            assert resp.status in (200, 303), (path, resp.status)
            return resp.headers.get("Location", "") if resp.status == 303 else await resp.text()

    _, code, _ = await api.post("/v1/devices/pairing-codes", json={})
    _, paired, _ = await api.post(
        "/v1/relay/app/pair", json={"code": code["code"], "name": "P1", "model": "m", "app_version": "1"}
    )
    device = paired["device_id"]
    assert (
        await post(
            f"/relays/{device}", name="Desk phone", per_minute_limit="12", max_in_flight="", per_day_limit=""
        )
        == "/relays?notice=relay-saved"
    )
    _, listing, _ = await api.get("/v1/devices")
    d = listing["devices"][0]
    assert (d["name"], d["enabled"], d["limits"]["per_minute"]) == ("Desk phone", False, 12)
    assert await post(f"/relays/{device}/unpair") == "/relays?notice=relay-unpaired"
    _, listing, _ = await api.get("/v1/devices")
    assert listing["devices"] == []

    page = await post("/webhooks", url="http://127.0.0.1:9/hook", events=["message.sent", "message.failed"])
    assert "whsec_" in page
    _, hooks, _ = await api.get("/v1/webhooks")
    hook = hooks["webhooks"][0]["id"]
    assert (
        await post(
            f"/webhooks/{hook}",
            url="http://127.0.0.1:9/other",
            description="ops",
            enabled="on",
            events="message.failed",
        )
        == "/webhooks?notice=webhook-saved"
    )
    _, got, _ = await api.get(f"/v1/webhooks/{hook}")
    assert (got["webhook"]["url"], got["webhook"]["events"], got["webhook"]["description"]) == (
        "http://127.0.0.1:9/other",
        ["message.failed"],
        "ops",
    )
    assert "whsec_" in await post(f"/webhooks/{hook}/rotate")
    _, got, _ = await api.get(f"/v1/webhooks/{hook}")
    assert got["webhook"]["previous_secret_expires_at"] is not None
    assert await post(f"/webhooks/{hook}/delete") == "/webhooks?notice=webhook-removed"

    assert (
        await post("/recipients", name="Ali", phone="+998901234567", tags="vip, new")
        == "/recipients?notice=recipient-added"
    )
    _, found, _ = await api.get("/v1/recipients", params={"q": "Ali"})
    rid = found["recipients"][0]["id"]
    assert found["recipients"][0]["tags"] == ["vip", "new"]
    assert (
        await post(f"/recipients/{rid}", name="Ali V", phone="+998901234567", tags="", opted_out="on")
        == f"/recipients/{rid}?notice=recipient-saved"
    )
    _, got, _ = await api.get(f"/v1/recipients/{rid}")
    assert (got["recipient"]["name"], got["recipient"]["opted_out"]) == ("Ali V", True)
    location = await post("/recipients/lists", name="VIP")
    list_id = location.rsplit("/", 1)[1]
    assert (
        await post(f"/recipients/lists/{list_id}/members", phones="+998901234567\n+998907654321")
        == f"/recipients/lists/{list_id}?notice=members-added"
    )
    _, lst, _ = await api.get(f"/v1/recipient-lists/{list_id}")
    assert lst["list"]["size"] == 2
    assert (
        await post(f"/recipients/lists/{list_id}/members/remove", recipient_id=rid)
        == f"/recipients/lists/{list_id}?notice=member-removed"
    )
    assert await post(f"/recipients/{rid}/delete") == "/recipients?notice=recipient-removed"

    location = await post("/messages/otp", to="+998901234567", purpose="login", locale="uz")
    assert location.startswith("/messages/req_") and "otp_id=otp_" in location
    async with session.get(origin(gateway) + location, headers=headers) as resp:
        assert resp.status == 200 and "otp_" in await resp.text()

    _, created, _ = await api.post("/v1/tokens", json={"scopes": ["account.read"]})
    token_id = created["token_info"]["id"]
    assert await post(f"/tokens/{token_id}/revoke") == "/tokens?notice=token-revoked"
    _, tokens, _ = await api.get("/v1/tokens")
    assert [t["revoked_at"] is not None for t in tokens["tokens"] if t["id"] == token_id] == [True]
    async with session.get(origin(gateway) + "/tokens?notice=token-revoked", headers=headers) as resp:
        assert "Token revoked." in await resp.text()


async def test_sign_in_attempts_are_limited_per_address(
    gateway: RunningGateway, session: aiohttp.ClientSession
) -> None:
    """After a burst of wrong tokens from one address, further attempts get 429 with
    ``Retry-After`` before any token is looked up."""
    async with session.get(origin(gateway) + "/signin") as resp:
        login_cookie = resp.cookies["rg_login"].value
        csrf = CSRF.findall(await resp.text())[0]
    statuses = []
    for _ in range(12):
        async with session.post(
            origin(gateway) + "/signin",
            data={"csrf": csrf, "token": "rgat_" + "A" * 36},
            headers={"Cookie": f"rg_login={login_cookie}"},
            allow_redirects=False,
        ) as resp:
            statuses.append(resp.status)
            retry_after = resp.headers.get("Retry-After")
    assert statuses[:10] == [401] * 10 and statuses[-1] == 429 and retry_after


async def test_batch_page_shows_progress_in_every_language_and_cancels(
    gateway: RunningGateway, account: tuple[str, str], session: aiohttp.ClientSession
) -> None:
    """A queued list's batch page is a progress view (bar, counts by status) in each of the four
    languages, not the raw answer; its Cancel form cancels what is still queued, as the API then
    shows, and the Messages filter by batch lists exactly the batch's messages."""
    from tests.harness import ApiClient

    api = ApiClient(session, gateway.base_url, account[1])
    _, created, _ = await api.post("/v1/recipient-lists", json={"name": "Poets"})
    list_id = created["list"]["id"]
    await api.post(
        f"/v1/recipient-lists/{list_id}/members", json={"phones": ["+998901234561", "+998901234562"]}
    )
    _, queued, _ = await api.post("/v1/recipient-lists/queue", json={"list_id": list_id, "message": "verse"})
    batch_id = queued["batch_id"]
    await api.post("/v1/sms/send", json={"to": "+998901234563", "message": "not of the batch"})
    cookie, csrf = await sign_in(session, gateway, account[1])
    expected = {
        "en": ("Messages by status", "0 of 2 finished"),
        "ru": ("Сообщения по статусу", "завершено 0 из 2"),
        "uz": ("Holat bo\u02bbyicha xabarlar", "2 tadan 0 tasi yakunlandi"),
        "bn": ("অবস্থা অনুযায়ী বার্তা", "2টির মধ্যে 0টি শেষ"),
    }
    for lang, words in expected.items():
        headers = {"Cookie": f"rg_session={cookie}; rg_lang={lang}"}
        async with session.get(f"{origin(gateway)}/batches/{batch_id}", headers=headers) as resp:
            text = await resp.text()
        assert resp.status == 200 and all(w in text for w in words), (lang, text[-3000:])
        assert '<progress id="batch-bar" value="0" max="2">' in text and "list_id" not in text
        assert 'data-count="queued">2<' in text
    headers = {"Cookie": f"rg_session={cookie}"}
    async with session.post(
        f"{origin(gateway)}/batches/{batch_id}/cancel",
        data={"csrf": csrf},
        headers=headers,
        allow_redirects=False,
    ) as resp:
        assert (
            resp.status == 303 and resp.headers["Location"] == f"/batches/{batch_id}?notice=batch-cancelled"
        )
    _, got, _ = await api.get(f"/v1/batches/{batch_id}")
    assert got["batch"]["counts"]["cancelled"] == 2 and got["batch"]["cancelled_at"] is not None
    async with session.get(
        f"{origin(gateway)}/batches/{batch_id}?notice=batch-cancelled", headers=headers
    ) as resp:
        text = await resp.text()
    assert "Batch cancelled." in text and 'data-state="cancelled"' in text and "/cancel" not in text
    async with session.get(
        f"{origin(gateway)}/messages", params={"batch_id": batch_id}, headers=headers
    ) as resp:
        text = await resp.text()
    assert text.count("+998901234561") == 1 and text.count("+998901234562") == 1
    assert "+998901234563" not in text and 'id="batch-filter"' in text
