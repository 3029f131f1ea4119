"""Live dashboard pages in a real browser: a relay paired from the page appears online, a
message sent from the page goes queued → delivered, without a reload (Server-Sent Events)."""

from __future__ import annotations

import asyncio
import random
import re

import aiohttp
from playwright.async_api import FilePayload, Page, expect

from gateway.sim.phone import RelayState, SimulatedRelay
from gateway.sim.relay import RelayFleet
from tests.browser.conftest import screenshot, sign_in, site, wait_live
from tests.harness import RunningGateway, fleet_options, free_port, make_account, start_gateway

TO = "+998901234567"


async def _mark(page: Page) -> None:
    """Tag the loaded document: the tag survives only if the page is never reloaded."""
    await page.evaluate("window.__noReload = true")


async def _not_reloaded(page: Page) -> None:
    assert await page.evaluate("window.__noReload === true"), "the page was reloaded"


async def test_paired_relay_appears_online_without_reload(
    page: Page, gateway: RunningGateway, account: tuple[str, str], session: aiohttp.ClientSession
) -> None:
    """The pairing code shown in large type (with its QR code, counting down) pairs a simulated
    phone, and the new relay appears online on the open Relays page by itself."""
    await sign_in(page, gateway, account[1])
    await page.get_by_role("link", name="Relays", exact=True).click()
    await page.get_by_role("button", name="Create a pairing code").click()
    code = (await page.locator("#pairing-code").inner_text()).strip()
    await expect(page.locator(".qr svg")).to_be_visible()
    await expect(page.locator(".countdown")).to_have_text(re.compile(r"^(9|10):\d\d$"))  # of 10 min
    await wait_live(page)
    await _mark(page)
    await expect(page.locator(".relay")).to_have_count(0)
    body = {"code": code, "name": "Page Phone", "model": "SimPhone 1", "app_version": "sim-1.0"}
    async with session.post(gateway.base_url + "/v1/relay/app/pair", json=body) as resp:
        assert resp.status == 200, await resp.text()
        paired = await resp.json()
    state = RelayState(
        index=0,
        device_id=paired["device_id"],
        device_token=paired["device_token"],
        ws_url=paired["ws_url"],
        name="Page Phone",
        heartbeat_interval=float(paired["heartbeat_interval_seconds"]),
    )
    options = fleet_options(gateway, account[1], 1)
    relay = SimulatedRelay(
        state,
        options,
        random.Random(1),
        gate=asyncio.Semaphore(1),
        on_sent=lambda _: None,
        on_welcome=lambda _: None,
    )
    relay.start()
    try:
        row = page.locator(f'.relay[data-device-id="{paired["device_id"]}"]')
        await expect(row.locator("[data-online]")).to_have_attribute("data-online", "true")
        await expect(row).to_contain_text("Page Phone")
        await _not_reloaded(page)
        await screenshot(page, "relays-paired")
    finally:
        await relay.stop()


async def test_message_sent_from_page_goes_queued_to_delivered_live(
    page: Page, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """A test SMS sent from the Messages page opens its page at ``queued``; its later states
    (``sent`` when the page catches it, then ``delivered``) arrive in order without a reload,
    with the attempt's relay."""
    fleet = await RelayFleet.start(fleet_options(gateway, account[1], 1, sent_delay=1.0, delivered_delay=0.5))
    try:
        await sign_in(page, gateway, account[1])
        await page.get_by_role("link", name="Messages", exact=True).click()
        await page.get_by_label("Phone number").first.fill(TO)
        await page.get_by_label("Text").fill("Hello from the dashboard")
        await page.get_by_role("button", name="Send SMS").click()
        await page.wait_for_url(f"{site(gateway)}/messages/req_*")
        status = page.locator("#message-status [data-status]")
        first = await status.get_attribute("data-status")
        assert first in ("queued", "dispatched"), first
        await _mark(page)
        await page.evaluate(
            """window.__seen = [];
               new MutationObserver(() => {
                 const s = document.querySelector('#message-status [data-status]');
                 if (s && window.__seen.at(-1) !== s.dataset.status) window.__seen.push(s.dataset.status);
               }).observe(document.getElementById('message-live'), {childList: true, subtree: true});"""
        )
        await wait_live(page)
        await expect(status).to_have_attribute("data-status", "delivered")
        await _not_reloaded(page)
        seen = [first, *await page.evaluate("window.__seen")]
        order = ["queued", "dispatched", "sent", "delivered"]
        assert seen == sorted(seen, key=order.index) and seen[-1] == "delivered", seen
        await expect(page.locator("table")).to_contain_text(fleet.relays[0].name)
        await screenshot(page, "message-delivered")
        await page.get_by_role("link", name="Messages", exact=True).click()
        await expect(page.locator("tbody tr").first.locator("[data-status]")).to_have_attribute(
            "data-status", "delivered"
        )
        await screenshot(page, "messages")
    finally:
        await fleet.stop()


async def test_page_reconnects_by_itself_after_a_gateway_restart(page: Page, database_url: str) -> None:
    """The Relays page's event stream comes back by itself when the gateway restarts on the same
    port (the session survives: it is stored), and a relay connecting afterwards appears live."""
    port = free_port()
    running = await start_gateway(database_url, http_port=port)
    _, token = await make_account(database_url)
    try:
        await sign_in(page, running, token)
        await page.goto(site(running) + "/relays")
        await wait_live(page)
        await _mark(page)
        await running.stop()
        await page.locator("#live:not(.on)").wait_for()
        running = await start_gateway(database_url, http_port=port)
        await wait_live(page)
        fleet = await RelayFleet.start(fleet_options(running, token, 1))
        try:
            await expect(page.locator(".relay [data-online]")).to_have_attribute("data-online", "true")
            await _not_reloaded(page)
        finally:
            await fleet.stop()
    finally:
        await running.stop()


async def test_queue_a_list_and_follow_its_batch_to_completion(
    page: Page, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """People imported from a CSV, put on a list and queued from the list's page: the batch page
    follows the progress live (no reload) until every item is delivered and the batch completed,
    and the Messages filter by batch lists exactly its messages."""
    people = [("Alisher", "+998901234561"), ("Bobur", "+998901234562"), ("Zahiriddin", "+998901234563")]
    csv = "name,phone\n" + "".join(f"{name},{phone}\n" for name, phone in people)
    await sign_in(page, gateway, account[1])
    await page.get_by_role("link", name="Recipients", exact=True).click()
    await page.get_by_label("CSV file", exact=True).set_input_files(
        files=FilePayload(name="people.csv", mimeType="text/csv", buffer=csv.encode())
    )
    await page.get_by_role("button", name="Import", exact=True).click()
    await expect(page.locator("#import-result")).to_contain_text("Imported: 3")
    await page.get_by_label("New list").fill("Poets")
    await page.get_by_role("button", name="Create list").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Poets")
    await page.get_by_label("Add numbers (one a line)").fill("\n".join(phone for _, phone in people))
    await page.get_by_role("button", name="Add members").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("(3)")
    fleet = await RelayFleet.start(fleet_options(gateway, account[1], 1, sent_delay=0.3, delivered_delay=0.3))
    try:
        await page.get_by_label("Text").fill("A verse for you")
        await page.get_by_label("Priority").select_option("normal")
        await page.get_by_role("button", name="Queue the list").click()
        await page.wait_for_url(f"{site(gateway)}/batches/bat_*")
        progress = page.locator(".batch-progress")
        await expect(progress).to_have_attribute("data-total", "3")
        await _mark(page)
        await wait_live(page)
        await expect(page.locator("#batch-state [data-state]")).to_have_attribute("data-state", "completed")
        await expect(progress).to_have_attribute("data-done", "3")
        await expect(page.locator("[data-count=delivered]")).to_have_text("3")
        await expect(page.locator("#batch-bar")).to_have_attribute("value", "3")
        await _not_reloaded(page)
        await screenshot(page, "batch-completed")
        batch_id = page.url.rsplit("/", 1)[1]
        await page.get_by_role("link", name="Messages of this batch").click()
        await expect(page.locator("#batch-filter")).to_contain_text(batch_id)
        await expect(page.get_by_label("Batch")).to_have_value(batch_id)
        rows = page.locator("#messages-live tbody tr")
        await expect(rows).to_have_count(3)
        for _, phone in people:
            await expect(page.locator("#messages-live")).to_contain_text(phone)
    finally:
        await fleet.stop()
