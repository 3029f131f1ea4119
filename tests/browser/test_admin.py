"""Webhooks, recipients and the queue in a real browser: retry a failed delivery against a real
receiver, import a CSV with the progress bar, pause and resume the queue, cancel a scheduled
message."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
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
        await page.wait_for_url("**notice=retry-queued")  # the form's redirect, before any reload
        await receiver.wait_for("/hook", 2)
        for _ in range(50):  # the attempt is recorded right after the answer: reload until then
            await page.reload(wait_until="load")
            if await page.locator("#attempts tbody tr").count() == 2:
                break
            await asyncio.sleep(0.1)
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


async def test_pause_and_resume_the_queue(
    page: Page, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """Pause on the Queue page shows the queue paused (Overview too), a test SMS is then refused
    with the queue_blocked error on the Messages page; Resume lets the next one through."""
    await sign_in(page, gateway, account[1])
    await expect(page.locator("#queue-state [data-state]")).to_have_attribute("data-state", "running")
    await page.get_by_role("link", name="Queue", exact=True).click()
    await expect(page.locator("[data-depth=normal]")).to_have_text("0")
    await page.get_by_role("button", name="Pause the queue").click()
    await expect(page.get_by_role("status").filter(has_text="Queue paused.")).to_be_visible()
    await expect(page.locator("#queue-state [data-state]")).to_have_attribute("data-state", "paused")
    await expect(page.locator("#queue-blocked")).to_have_attribute("data-reason", "paused")
    await expect(page.get_by_role("button", name="Pause the queue")).to_have_count(0)
    await screenshot(page, "queue-paused")
    await page.get_by_role("link", name="Messages", exact=True).click()
    await page.get_by_label("Phone number").first.fill("+998901234567")
    await page.get_by_label("Text").fill("while paused")
    await page.get_by_role("button", name="Send SMS").click()
    await expect(page.locator("#h-sms ~ .error")).to_contain_text("The queue is not accepting messages")
    await expect(page.get_by_label("Text")).to_have_value("while paused")
    await page.get_by_role("link", name="Overview", exact=True).click()
    await expect(page.locator("#queue-state [data-state]")).to_have_attribute("data-state", "paused")
    await page.get_by_role("link", name="Queue", exact=True).click()
    await page.get_by_role("button", name="Resume the queue").click()
    await expect(page.get_by_role("status").filter(has_text="Queue resumed.")).to_be_visible()
    await expect(page.locator("#queue-state [data-state]")).to_have_attribute("data-state", "running")
    await expect(page.locator("#queue-blocked")).to_have_count(0)
    await page.get_by_role("link", name="Messages", exact=True).click()
    await page.get_by_label("Phone number").first.fill("+998901234567")
    await page.get_by_label("Text").fill("after resume")
    await page.get_by_role("button", name="Send SMS").click()
    await page.wait_for_url(f"{site(gateway)}/messages/req_*")
    await page.get_by_role("link", name="Queue", exact=True).click()
    await expect(page.locator("[data-depth=normal]")).to_have_text("1")


async def test_cancel_a_scheduled_message_from_its_page(
    page: Page, gateway: RunningGateway, account: tuple[str, str], session: aiohttp.ClientSession
) -> None:
    """A message sent through the API for an hour ahead is cancelled on its page: the page says so
    and shows it cancelled, and the API agrees."""
    send_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    headers = {"Authorization": f"Bearer {account[1]}"}
    body = {"to": "+998901234567", "message": "later", "send_at": send_at}
    async with session.post(gateway.base_url + "/v1/sms/send", json=body, headers=headers) as resp:
        assert resp.status in (200, 202), await resp.text()
        request_id = (await resp.json())["request_id"]
    await sign_in(page, gateway, account[1])
    await page.goto(f"{site(gateway)}/messages/{request_id}")
    await expect(page.locator("#message-status [data-status]")).not_to_have_attribute(
        "data-status", "cancelled"
    )
    await page.get_by_role("button", name="Cancel this message").click()
    await expect(page.get_by_role("status").filter(has_text="Message cancelled.")).to_be_visible()
    await expect(page.locator("#message-status [data-status]")).to_have_attribute("data-status", "cancelled")
    await screenshot(page, "message-cancelled")
    await expect(page.get_by_role("button", name="Cancel this message")).to_have_count(0)
    query = {"request_id": request_id}
    async with session.get(gateway.base_url + "/v1/messages/status", params=query, headers=headers) as resp:
        assert (await resp.json())["status"] == "cancelled"
