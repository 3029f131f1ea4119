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


async def test_demo_runs_websocket_relays_and_an_smsgate_phone(
    database_url: str, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """`relaygate demo` brings up two WebSocket relays and one SMSGate phone; a message sent with
    its printed token is delivered."""
    args = [
        "-m",
        "gateway",
        "--database-url",
        database_url,
        "--data-dir",
        str(tmp_path),
        "demo",
        "--http-port",
        "0",
        "--relay-port",
        "0",
    ]
    proc = await asyncio.create_subprocess_exec(
        PYTHON, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        async with asyncio.timeout(60):
            while "Ctrl-C stops the demo" not in (line := (await proc.stdout.readline()).decode()):
                assert line, "demo exited early"
                lines.append(line)
        text = "".join(lines)
        assert "2 WebSocket, 1 SMSGate app" in text
        token = next(x.split()[1] for x in lines if x.startswith("token:"))
        base = next(x.split()[4].rstrip(",") for x in lines if x.startswith("relaygate demo:"))
        api = ApiClient(session, base, token)
        _, devices, _ = await api.get("/v1/devices")
        assert len(devices["devices"]) == 3 and all(d["online"] for d in devices["devices"])
        status, body, _ = await api.post("/v1/sms/send", json={"to": TO, "message": "demo"})
        assert status == 200

        async def delivered() -> bool:
            _, answer, _ = await api.get("/v1/messages/status", params={"request_id": body["request_id"]})
            return bool(answer["status"] == "delivered")

        await eventually(delivered, timeout=20, what="demo message delivered")
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
