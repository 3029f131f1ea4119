"""The in-process accept benchmark runs against a real database and counts real answers."""

from __future__ import annotations

import asyncpg
import pytest

from bench import accept_inprocess
from tests.harness import DatabaseFactory


async def test_a_short_run_stores_every_send(
    databases: DatabaseFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await databases.create()
    monkeypatch.setenv("DATABASE_URL", url)
    await accept_inprocess.run(sends=300, concurrency=10, rounds=1)
    assert "µs CPU per send" in capsys.readouterr().out
    conn = await asyncpg.connect(url)
    try:
        assert (
            await conn.fetchval("SELECT count(*) FROM messages WHERE status = 'queued'") == 300 + 300
        )  # the warm-up's and the round's
    finally:
        await conn.close()
