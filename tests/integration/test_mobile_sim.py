"""`relaygate relay-sim --kind smsgate`: simulated SMSGate apps in a subprocess register by
code, take messages over SSE and record every SMS they send."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from tests.harness import PYTHON, ApiClient, eventually, make_account, start_gateway

TO = "+998901234567"


async def test_relay_sim_kind_smsgate(
    database_url: str, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """Two simulated SMSGate phones register, deliver what the API sends and record each SMS once."""
    running = await start_gateway(database_url, pair_rate_per_second=1e6, pair_burst=10**6)
    _, token = await make_account(database_url)
    record = tmp_path / "sent.jsonl"
    api = ApiClient(session, running.base_url, token)
    args = [
        "-m",
        "gateway",
        "relay-sim",
        "--kind",
        "smsgate",
        "--api-url",
        running.base_url,
        "--token",
        token,
        "--devices",
        "2",
        "--record",
        str(record),
        "--sent-delay",
        "0.01",
        "--delivered-delay",
        "0.01",
    ]
    proc = await asyncio.create_subprocess_exec(
        PYTHON, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            while "SMSGate phones connected" not in (line := (await proc.stdout.readline()).decode()):
                assert line, "relay-sim exited early"
        ids = []
        for i in range(6):
            status, body, _ = await api.post("/v1/sms/send", json={"to": TO, "message": f"sim {i}"})
            assert status == 200
            ids.append(body["request_id"])

        async def all_delivered() -> bool:
            for request_id in ids:
                _, body, _ = await api.get("/v1/messages/status", params={"request_id": request_id})
                if body["status"] != "delivered":
                    return False
            return True

        await eventually(all_delivered, timeout=15, what="all delivered")
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
        assert proc.returncode == 0
        lines = [json.loads(x) for x in record.read_text().splitlines()]
        assert sorted(x["id"] for x in lines) == sorted(ids)
        _, devices, _ = await api.get("/v1/devices")
        assert len(devices["devices"]) == 2
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await running.stop()
