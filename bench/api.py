"""Setting the gateway up for a run through its public API and CLI: an account, paired relays,
relay limits, a webhook endpoint, and probes for features that may not exist yet."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from bench.procs import GatewayProc, run_module
from bench.relayfleet import DeviceCred

__all__ = ["BenchApi", "create_account"]

SETUP_CONCURRENCY = 64


async def create_account(gateway: GatewayProc) -> str:
    """A fresh account with every scope, through ``relaygate accounts create --json``; its token."""
    code, out = await run_module(
        "gateway", "accounts", "create", f"bench-{int(time.time())}", "--json", env=gateway.cli_env()
    )
    if code != 0:
        raise RuntimeError(f"accounts create failed ({code}): {out[-500:]}")
    for line in out.splitlines():
        if line.startswith("{"):
            token: str = json.loads(line)["token"]
            return token
    raise RuntimeError(f"no token in: {out[-500:]}")


class BenchApi:
    """An aiohttp session bound to one gateway and token."""

    def __init__(self, api: str, token: str) -> None:
        self.api = api
        self.token = token
        self.http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=60),
            connector=aiohttp.TCPConnector(limit=SETUP_CONCURRENCY),
            headers={"Authorization": f"Bearer {token}"},
        )
        self.anon = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))

    async def close(self) -> None:
        """Close the session."""
        await self.http.close()
        await self.anon.close()

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """``(status, decoded JSON or None)``."""
        async with self.http.request(method, self.api + path, json=body) as resp:
            raw = await resp.read()
            try:
                return resp.status, json.loads(raw) if raw else None
            except ValueError:
                return resp.status, None

    async def pair(self, count: int, start: int = 0) -> list[DeviceCred]:
        """Pair ``count`` relays the way the app does (pairing code, then ``/relay/app/pair``)."""
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)

        async def one(i: int) -> DeviceCred:
            async with gate:
                status, code = await self.call("POST", "/v1/devices/pairing-codes", {})
                if status != 201:
                    raise RuntimeError(f"pairing code: HTTP {status} {code}")
                body = {
                    "code": code["code"],
                    "name": f"bench {i}",
                    "model": "BenchPhone",
                    "app_version": "b1",
                }
                async with self.anon.post(self.api + "/v1/relay/app/pair", json=body) as resp:
                    paired = await resp.json(content_type=None)
                    if resp.status != 200:
                        raise RuntimeError(f"pair: HTTP {resp.status} {paired}")
                return DeviceCred(id=paired["device_id"], token=paired["device_token"])

        return list(await asyncio.gather(*(one(i) for i in range(start, start + count))))

    async def set_limits(self, device_ids: list[str], per_minute: int = 1000, in_flight: int = 50) -> None:
        """Let relays send fast (the default 30/min would throttle everything)."""
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)

        async def one(device_id: str) -> None:
            async with gate:
                body = {"per_minute_limit": per_minute, "max_in_flight": in_flight}
                status, answer = await self.call("PATCH", f"/v1/devices/{device_id}", body)
                if status != 200:
                    raise RuntimeError(f"PATCH device: HTTP {status} {answer}")

        await asyncio.gather(*(one(d) for d in device_ids))

    async def register_webhook(self, url: str, events: list[str], batch: int | None = None) -> str | None:
        """Register a receiver (``batch``: up to that many events per request, sent at the latest
        50 ms after the first); None when the gateway has no ``/v1/webhooks`` (404) yet."""
        body: dict[str, Any] = {"url": url, "events": events}
        if batch is not None:
            body["batch"] = {"max_events": batch, "max_wait_ms": 50}
        status, answer = await self.call("POST", "/v1/webhooks", body)
        if status == 404 or status == 405:
            return None
        if status not in (200, 201):
            raise RuntimeError(f"POST /v1/webhooks: HTTP {status} {answer}")
        webhook_id: str = answer["webhook"]["id"]
        return webhook_id

    async def has_otp(self) -> bool:
        """Whether ``POST /v1/otp/send`` exists (anything but 404/405)."""
        status, _ = await self.call("POST", "/v1/otp/send", {})
        return status not in (404, 405)
