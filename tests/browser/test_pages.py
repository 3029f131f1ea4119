"""The dashboard in a real browser: sign-in, every page at phone width, languages, scopes."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import PHONE, screenshot, sign_in, site
from tests.harness import RunningGateway

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
    browser: Browser, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """At 390x844 no page scrolls sideways; every page is screenshotted."""
    ctx = await browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    try:
        page = await ctx.new_page()
        await sign_in(page, gateway, account[1])
        for path, name in [
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
            await screenshot(page, f"phone-{name}")
    finally:
        await ctx.close()
