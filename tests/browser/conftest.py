"""Fixtures of the dashboard's browser tests: one Chromium for the whole session (Debian's
``chromium``, launched by path), a fresh browser context per test, a signed-in page, and
screenshots under ``test-artefacts/browser/`` (gitignored).

The tests skip only when ``RELAYGATE_BROWSER_TESTS=0``; a missing ``chromium`` is a failure
(``.ci/toolchains`` installs it).
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.harness import DatabaseFactory, RunningGateway, make_account, start_gateway

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "browser"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``RELAYGATE_BROWSER_TESTS=0`` skips this folder (nothing else does)."""
    if os.environ.get("RELAYGATE_BROWSER_TESTS") != "0":
        return
    skip = pytest.mark.skip(reason="RELAYGATE_BROWSER_TESTS=0")
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for every browser test."""
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is not installed (bash .ci/toolchains installs it)"
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        await launched.close()


@pytest.fixture(scope="session")
async def gateway(databases: DatabaseFactory) -> AsyncIterator[RunningGateway]:
    """One gateway for the browser tests that need no settings of their own; each test gets its
    own account on it (:func:`account`), so they cannot see each other's data. Tests that need
    other settings or a restart start their own."""
    running = await start_gateway(await databases.create())
    yield running
    await running.stop()


_accounts = itertools.count(1)


@pytest.fixture
async def account(gateway: RunningGateway) -> tuple[str, str]:
    """``(account_id, token)`` of a new account on the shared gateway, token with every scope."""
    return await make_account(gateway.database_url, f"acme {next(_accounts)}")


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (no cookies), desktop-sized."""
    ctx = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    ctx.set_default_timeout(10_000)
    yield ctx
    await ctx.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    """A tab of :func:`context`."""
    return await context.new_page()


def site(gateway: RunningGateway) -> str:
    """The dashboard's origin: ``http://127.0.0.1:PORT``."""
    return f"http://127.0.0.1:{gateway.gateway.http_port}"


async def sign_in(page: Page, gateway: RunningGateway, token: str) -> None:
    """Sign in through the form and wait for the overview."""
    await page.goto(site(gateway) + "/signin")
    await page.get_by_label("Access token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(site(gateway) + "/")


async def wait_live(page: Page) -> None:
    """Until the page's event stream is open."""
    await page.locator("#live.on").wait_for()


async def screenshot(page: Page, name: str) -> None:
    """Save a full-page screenshot as a test artefact."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)
