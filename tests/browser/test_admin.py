"""Webhooks, recipients and the queue in a real browser: retry a failed delivery against a real
receiver, import a CSV with the progress bar, and the parts waiting for endpoints of later
versions."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from playwright.async_api import FilePayload, Page, expect

from tests.browser.conftest import screenshot, sign_in, site
from tests.harness import RunningGateway, make_account, start_gateway
from tests.webhook_receiver import Receiver


async def test_retry_a_failed_webhook_delivery(database_url: str, page: Page, tmp_path: Path) -> None:
    """An endpoint added on the page answers the test event with 500; Retry now on the delivery's
    page sends it again (a manual attempt), and the log shows both attempts with their status."""
    gateway = await start_gateway(database_url, webhook_schedule=(0, 3600))  # no automatic retry soon
    receiver = Receiver(
        script={"/hook": lambda n: web.Response(status=500 if n == 1 else 200, text=f"answer {n}")}
    )
    await receiver.start()
    try:
        _, token = await make_account(database_url)
        await sign_in(page, gateway, token)
        await page.get_by_role("link", name="Webhooks", exact=True).click()
        await page.get_by_label("URL").fill(receiver.url("/hook"))
        await page.get_by_role("button", name="Add endpoint").click()
        await expect(page.locator("#secret-value")).to_contain_text("whsec_")
        await page.get_by_role("button", name="Send a test event").click()
        await receiver.wait_for("/hook", 1)
        await page.goto(site(gateway) + "/webhooks")
        await page.locator("tr[data-delivery-id] a").first.click()
        await expect(page.locator("#attempts tbody tr")).to_have_count(1)
        await expect(page.locator("#attempts")).to_contain_text("500")
        await page.get_by_role("button", name="Retry now").click()
        await receiver.wait_for("/hook", 2)
        for _ in range(50):  # the attempt is recorded right after the answer: reload until then
            await page.reload()
            if await page.locator("#attempts tbody tr").count() == 2:
                break
        await expect(page.locator("#attempts tbody tr")).to_have_count(2)
        await expect(page.locator("#delivery-status")).to_have_text("succeeded")
        await expect(page.locator("#attempts")).to_contain_text("manual")
        await screenshot(page, "webhook-delivery-retried")
    finally:
        await receiver.stop()
        await gateway.stop()


async def test_import_a_csv_with_progress(
    page: Page, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """A CSV chosen on the Recipients page is imported with the API's own rules (a bad row is
    reported, the good ones stored), and a search finds the imported people."""
    await sign_in(page, gateway, account[1])
    await page.get_by_role("link", name="Recipients", exact=True).click()
    csv = "name,phone,tags\nAlisher Navoiy,+998901234567,vip\nBobur Mirzo,+998907654321,\nNobody,not-a-number,\n"
    await page.get_by_label("CSV file", exact=True).set_input_files(
        files=FilePayload(name="people.csv", mimeType="text/csv", buffer=csv.encode())
    )
    await page.get_by_role("button", name="Import", exact=True).click()
    await expect(page.locator("#import-result")).to_contain_text("Imported: 2")
    await expect(page.locator("#import-result")).to_contain_text("rows with errors: 1")
    await expect(page.locator("#import-result .row-error")).to_contain_text("4: phone")
    await expect(page.locator("#import-progress")).to_have_attribute("value", "100")
    await screenshot(page, "recipients-imported")
    await page.get_by_label("Name or number").fill("Alisher")
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(page.locator("#recipients tbody tr")).to_have_count(1)
    await expect(page.locator("#recipients")).to_contain_text("+998901234567")


async def test_parts_waiting_for_later_endpoints_say_so(
    page: Page, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """Queue health, pause/resume, queueing a list and cancel look their endpoints up and say
    "not available in this version" while this build has none (they work once it has)."""
    await sign_in(page, gateway, account[1])
    await page.get_by_role("link", name="Queue", exact=True).click()
    await expect(page.locator(".unavailable")).to_have_count(2)
    await page.goto(site(gateway) + "/recipients")
    await page.get_by_label("New list").fill("VIP")
    await page.get_by_role("button", name="Create list").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("VIP")
    await expect(page.locator(".unavailable")).to_have_text("Not available in this version")
