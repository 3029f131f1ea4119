"""Dashboard sessions in a real browser: cookie flags, sign-out really ends the session, CSRF
is refused, a revoked token ends its sessions, scopes hide what they do not allow."""

from __future__ import annotations

import aiohttp
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.conftest import screenshot, sign_in, site
from tests.harness import ApiClient, RunningGateway, make_account


async def _session_cookie(context: BrowserContext) -> str:
    cookies = {c["name"]: c for c in await context.cookies()}
    cookie = cookies["rg_session"]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain HTTP and RELAYGATE_DASHBOARD_SECURE_COOKIE unset
    return cookie["value"]


async def _get(session: aiohttp.ClientSession, url: str, cookie: str) -> tuple[int, str, str]:
    async with session.get(url, headers={"Cookie": f"rg_session={cookie}"}, allow_redirects=False) as resp:
        return resp.status, resp.headers.get("Location", ""), await resp.text()


async def test_sign_out_ends_the_session_on_the_server(
    page: Page,
    context: BrowserContext,
    gateway: RunningGateway,
    account: tuple[str, str],
    session: aiohttp.ClientSession,
) -> None:
    """After Sign out, the old cookie (replayed by another client) opens neither a page nor the
    event stream."""
    await sign_in(page, gateway, account[1])
    cookie = await _session_cookie(context)
    status, _, text = await _get(session, site(gateway) + "/tokens", cookie)
    assert status == 200 and "Tokens of this account" in text
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(site(gateway) + "/signin")
    status, location, _ = await _get(session, site(gateway) + "/tokens", cookie)
    assert status == 303 and location.startswith("/signin")
    status, _, _ = await _get(session, site(gateway) + "/events", cookie)
    assert status == 401


async def test_form_without_the_csrf_token_is_refused(
    page: Page,
    context: BrowserContext,
    gateway: RunningGateway,
    account: tuple[str, str],
    session: aiohttp.ClientSession,
) -> None:
    """A form posted with the session cookie but without (or with another session's) CSRF token
    is refused with 403 and changes nothing."""
    await sign_in(page, gateway, account[1])
    cookie = await _session_cookie(context)
    api = ApiClient(session, gateway.base_url, account[1])
    _, before, _ = await api.get("/v1/tokens")
    for form in (
        {"name": "x", "scopes": "account.read"},
        {"name": "x", "scopes": "account.read", "csrf": "forged"},
    ):
        async with session.post(
            site(gateway) + "/tokens",
            data=form,
            headers={"Cookie": f"rg_session={cookie}"},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 403
    _, after, _ = await api.get("/v1/tokens")
    assert len(after["tokens"]) == len(before["tokens"])
    # the same form from the page itself works
    await page.goto(site(gateway) + "/tokens")
    await page.get_by_label("Name").fill("from the page")
    await page.get_by_label("account.read").check()
    await page.get_by_role("button", name="Create token").click()
    await expect(page.locator("#token-value")).to_contain_text("rgat_")
    await screenshot(page, "token-created")
    _, after, _ = await api.get("/v1/tokens")
    assert len(after["tokens"]) == len(before["tokens"]) + 1


async def test_revoked_token_ends_its_sessions(
    page: Page, gateway: RunningGateway, account: tuple[str, str], session: aiohttp.ClientSession
) -> None:
    """Revoking the token a session was opened with (through the API) signs the page out."""
    api = ApiClient(session, gateway.base_url, account[1])
    status, created, _ = await api.post(
        "/v1/tokens", json={"scopes": ["account.read"], "name": "short-lived"}
    )
    assert status == 201
    await sign_in(page, gateway, created["token"])
    await api.request("DELETE", f"/v1/tokens/{created['token_info']['id']}")
    await page.goto(site(gateway) + "/relays")
    await page.wait_for_url(site(gateway) + "/signin?next=/relays")


async def test_scopes_hide_what_they_do_not_allow(page: Page, gateway: RunningGateway) -> None:
    """A read-only token sees no Tokens, Webhooks or Recipients link and no send forms."""
    _, token = await make_account(gateway.database_url, "reader", scopes=["account.read", "messages.read"])
    await sign_in(page, gateway, token)
    nav = page.get_by_role("navigation", name="Main")
    for hidden in ("Tokens", "Webhooks", "Recipients"):
        await expect(nav.get_by_role("link", name=hidden, exact=True)).to_have_count(0)
    await nav.get_by_role("link", name="Messages", exact=True).click()
    await expect(page.get_by_role("button", name="Send SMS")).to_have_count(0)
    await page.goto(site(gateway) + "/relays")
    await expect(page.get_by_role("button", name="Create a pairing code")).to_have_count(0)
