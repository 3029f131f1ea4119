"""The dashboard in a real browser: sign-in, every page at phone width, languages, scopes."""

from __future__ import annotations

import aiohttp
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import PHONE, screenshot, sign_in, site
from tests.harness import ApiClient, RunningGateway

NAV = ["Overview", "Relays", "Messages", "Queue", "Webhooks", "Recipients", "Tokens"]


async def test_wrong_token_refused_then_sign_in(
    page: Page, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """A wrong token is refused on the sign-in page; a valid one opens the overview with every
    navigation link and a Sign out button."""
    await page.goto(site(gateway) + "/")
    await page.wait_for_url(site(gateway) + "/signin")
    await page.get_by_label("Access token").fill("rgat_" + "x" * 36)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("That token was not accepted.")
    await screenshot(page, "signin-refused")
    await sign_in(page, gateway, account[1])
    nav = page.get_by_role("navigation", name="Main")
    for name in NAV:
        await expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    await expect(page.locator("#relays-online")).to_have_text("0 / 0")


async def test_every_page_fits_a_phone(
    browser: Browser, gateway: RunningGateway, account: tuple[str, str], session: aiohttp.ClientSession
) -> None:
    """At 390x844 no page scrolls sideways (the queue paused, a list's batch waiting); every page
    is screenshotted."""
    api = ApiClient(session, gateway.base_url, account[1])
    _, created, _ = await api.post("/v1/recipient-lists", json={"name": "Phone list"})
    list_id = created["list"]["id"]
    await api.post(f"/v1/recipient-lists/{list_id}/members", json={"phones": ["+998901234561"]})
    _, queued, _ = await api.post("/v1/recipient-lists/queue", json={"list_id": list_id, "message": "hi"})
    status, _, _ = await api.post("/v1/queue/pause", json={})
    assert status == 200 and queued["queued"] == 1
    ctx = await browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    try:
        page = await ctx.new_page()
        await sign_in(page, gateway, account[1])
        for path, name in [
            (f"/batches/{queued['batch_id']}", "batch"),
            (f"/recipients/lists/{list_id}", "list"),
            ("/", "overview"),
            ("/relays", "relays"),
            ("/messages", "messages"),
            ("/queue", "queue"),
            ("/webhooks", "webhooks"),
            ("/recipients", "recipients"),
            ("/tokens", "tokens"),
        ]:
            await page.goto(site(gateway) + path)
            scroll, inner = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert scroll <= inner, f"{path}: {scroll} > {inner}"
            if path == "/queue":
                await expect(page.locator("#queue-blocked")).to_have_attribute("data-reason", "paused")
            await screenshot(page, f"phone-{name}")
    finally:
        await ctx.close()


async def test_language_from_accept_language_and_the_switcher(
    browser: Browser, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """A Russian browser gets Russian pages; the switcher turns them Uzbek, then Bengali."""
    ctx = await browser.new_context(locale="ru-RU", extra_http_headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    try:
        page = await ctx.new_page()
        await page.goto(site(gateway) + "/signin")
        await page.get_by_label("Токен доступа").fill(account[1])
        await page.get_by_role("button", name="Войти").click()
        nav = page.get_by_role("navigation", name="Главное")
        await expect(nav.get_by_role("link", name="Обзор", exact=True)).to_be_visible()
        await page.get_by_role("link", name="O\u02bbzbekcha").click()
        await expect(
            page.get_by_role("navigation", name="Asosiy").get_by_role("link", name="Relaylar")
        ).to_be_visible()
        await page.get_by_role("link", name="বাংলা").click()
        await expect(page.get_by_role("button", name="সাইন আউট")).to_be_visible()
        await expect(page.locator("html")).to_have_attribute("lang", "bn")
        await screenshot(page, "overview-bn")
    finally:
        await ctx.close()


async def test_keyboard_reaches_navigation_and_forms(
    page: Page, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """Tab from the top of a page reaches the skip link, then the navigation links, in order;
    every form control of the Messages page has a label."""
    await sign_in(page, gateway, account[1])
    await page.goto(site(gateway) + "/messages")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")  # past the brand-less header: first nav link
    focused = await page.evaluate("document.activeElement.textContent")
    assert focused in ("Overview", "Relays"), focused
    unlabelled = await page.evaluate(
        """[...document.querySelectorAll('main input:not([type=hidden]), main select, main textarea')]
           .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.name)"""
    )
    assert unlabelled == []
