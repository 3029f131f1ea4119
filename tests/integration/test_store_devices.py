"""store/devices.py on real PostgreSQL: the keyword device update (absent keeps, None resets) and
the telemetry flush writing SIM lists into jsonb through the codec."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from store import accounts, devices
from store.database import connect


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A connection with the codecs, an account and two paired devices."""
    conn = await connect(database_url)
    await accounts.insert_account(
        conn,
        account_id="acc_1",
        name="a",
        relay_mode="auto",
        default_region=None,
        subscription_expires_at=None,
    )
    for n in (1, 2):
        await devices.insert_device(
            conn,
            device_id=f"dev_{n}",
            account_id="acc_1",
            name=f"p{n}",
            model="m",
            app_version="1",
            token_hash=bytes([n]),
        )
    yield conn
    await conn.close()


async def test_update_keeps_what_is_absent_and_resets_what_is_none(conn: asyncpg.Connection[Any]) -> None:
    """Limits given as numbers are set, left out stay, None goes back to the default; SIM limits replace."""
    first = await devices.update_device(
        conn, device_id="dev_1", account_id="acc_1", max_in_flight=5, per_day_limit=100, sim_limits={"0": 50}
    )
    assert first is not None
    assert (first.max_in_flight, first.per_minute_limit, first.per_day_limit) == (5, None, 100)
    assert first.sim_limits == {"0": 50}
    second = await devices.update_device(
        conn, device_id="dev_1", account_id="acc_1", per_day_limit=None, name="x"
    )
    assert second is not None
    assert (second.name, second.max_in_flight, second.per_day_limit, second.sim_limits) == (
        "x",
        5,
        None,
        {"0": 50},
    )
    assert await devices.update_device(conn, device_id="dev_1", account_id="acc_2", name="y") is None


async def test_telemetry_flush_writes_sim_lists(conn: asyncpg.Connection[Any]) -> None:
    """One statement writes each device's telemetry; SIM lists (lists inside jsonb[]) come back as written."""
    seen = datetime(2026, 1, 1, tzinfo=UTC)
    sims: list[list[dict[str, Any]]] = [[{"slot": 0, "carrier": "Beeline", "ready": True}], []]
    await devices.flush_telemetry(
        conn,
        device_ids=["dev_1", "dev_2"],
        last_seen_at=[seen, None],
        battery=[80, None],
        charging=[True, None],
        signal=[3, None],
        network=["lte", None],
        sims=sims,
        queue_length=[0, None],
        app_version=["2.0", None],
    )
    rows = await devices.devices_of_account(conn, account_id="acc_1")
    assert [(r.id, r.sims, r.battery, r.app_version, r.last_seen_at) for r in rows] == [
        ("dev_1", sims[0], 80, "2.0", seen),
        ("dev_2", [], None, "1", None),
    ]
