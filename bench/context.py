"""What every scenario shares within one run: options, the temp folder, the gateway process,
the account, paired relays, relay fleet processes and the webhook receiver."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from bench.api import BenchApi, create_account
from bench.loadgen import LoadConfig, LoadResult
from bench.procs import Child, GatewayProc, run_module
from bench.receiver import WebhookReceiver
from bench.relayfleet import DeviceCred, FleetConfig

__all__ = ["Bench", "Options"]

RELAYS_PER_FLEET = 25_000
"""Relays per fleet process (two cores: more processes would only fight the gateway for them)."""
RELAYS_PER_SOURCE = 10_000
"""Relays per 127.0.0.x source address (the ephemeral port range holds ~28k)."""
HEARTBEAT_INTERVAL = 30.0


@dataclass(frozen=True)
class Options:
    """Command-line choices."""

    quick: bool
    scenarios: tuple[str, ...]
    out_dir: Path
    max_relays: int
    profile: bool
    database_url: str | None
    duration: float | None = None
    """The soak's length in seconds (None: its default)."""
    webhook_batch: int | None = None
    """S2/S4's webhook endpoint batches up to this many events per request (None: one each)."""


@dataclass
class Bench:
    """The shared state of one benchmark run."""

    options: Options
    tmp: Path
    receiver: WebhookReceiver
    gateway: GatewayProc | None = None
    token: str = ""
    api: BenchApi | None = None
    creds: list[DeviceCred] = field(default_factory=list)
    """Relays of the main account (S1 idle fleets, S5 storm)."""
    send_token: str = ""
    send_api: BenchApi | None = None
    send_creds: list[DeviceCred] = field(default_factory=list)
    send_webhook: str = ""
    """The send account's webhook id, ``"n/a"`` when the gateway has no webhooks."""
    """Relays of a second account used by S2/S4, so the thousands of idle relays paired for S1
    do not sit in the send account's routing table."""
    fleets: list[Child] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    _fleet_seq: int = 0

    @property
    def quick(self) -> bool:
        """Small everything."""
        return self.options.quick

    # --- gateway ------------------------------------------------------------------------

    async def start_gateway(self) -> float:
        """Start the gateway (first time: also an account); seconds to healthy."""
        if self.gateway is None:
            env = {"RELAYGATE_HEARTBEAT_INTERVAL": str(int(HEARTBEAT_INTERVAL))}
            self.gateway = GatewayProc(self.tmp / "gateway", self.options.database_url, env)
            self.settings = {k: v for k, v in self.gateway.env.items() if k.startswith("RELAYGATE_")}
            seconds = await self.gateway.start()
            self.token = await create_account(self.gateway)
            self.api = BenchApi(self.gateway.api, self.token)
            return seconds
        return await self.gateway.start()

    async def restart_gateway(self) -> float:
        """A fresh gateway process on the same database (clean memory for RSS baselines)."""
        await self.stop_fleets()
        assert self.gateway is not None
        await self.gateway.stop()
        return await self.gateway.start()

    async def stop_gateway(self) -> None:
        """Stop fleets, then the gateway."""
        await self.stop_fleets()
        for api in (self.api, self.send_api):
            if api is not None:
                await api.close()
        self.api = self.send_api = None
        if self.gateway is not None:
            await self.gateway.stop()

    async def ensure_paired(self, count: int) -> float:
        """At least ``count`` relays paired; seconds spent pairing new ones."""
        missing = count - len(self.creds)
        if missing <= 0:
            return 0.0
        assert self.api is not None
        started = time.monotonic()
        self.creds += await self.api.pair(missing, start=len(self.creds))
        return time.monotonic() - started

    async def ensure_send_relays(self, count: int) -> list[DeviceCred]:
        """The send account (created on first use) with at least ``count`` paired relays."""
        assert self.gateway is not None
        if self.send_api is None:
            self.send_token = await create_account(self.gateway)
            self.send_api = BenchApi(self.gateway.api, self.send_token)
        missing = count - len(self.send_creds)
        if missing > 0:
            self.send_creds += await self.send_api.pair(missing, start=len(self.send_creds))
        return self.send_creds[:count]

    # --- relay fleets -------------------------------------------------------------------

    async def start_fleets(
        self,
        creds: list[DeviceCred],
        *,
        record: Path | None = None,
        ws_url: str | None = None,
        plain: int = 0,
    ) -> list[Child]:
        """Fleet processes for ``creds`` (or ``plain`` bare echo clients), started, not connected."""
        total = plain or len(creds)
        processes = max(1, math.ceil(total / RELAYS_PER_FLEET))
        sources = [f"127.0.0.{k + 1}" for k in range(max(1, math.ceil(total / RELAYS_PER_SOURCE)))]
        url = ws_url or (self.gateway.ws_url if self.gateway else "")
        fleets = []
        for k in range(processes):
            self._fleet_seq += 1
            config = FleetConfig(
                ws_url=url,
                devices=creds[k::processes],
                plain=len(range(plain)[k::processes]) if plain else 0,
                sources=sources,
                heartbeat_interval=HEARTBEAT_INTERVAL,
                record=str(record) if record else None,
            )
            path = self.tmp / f"fleet-{self._fleet_seq}.json"
            path.write_bytes(msgspec.json.encode(config))
            fleet = Child("bench.relayfleet", str(path), log=self.tmp / f"fleet-{self._fleet_seq}.log")
            await fleet.start()
            fleets.append(fleet)
        self.fleets += fleets
        return fleets

    async def fleet_all(self, cmd: dict[str, Any], timeout: float = 120.0) -> list[dict[str, Any]]:
        """The same command to every running fleet, at once."""
        return list(await asyncio.gather(*(f.command(cmd, timeout + 10) for f in self.fleets)))

    async def stop_fleets(self, graceful: bool = False) -> None:
        """End every fleet process (killed unless ``graceful``)."""
        for fleet in self.fleets:
            if graceful:
                await fleet.stop()
            else:
                fleet.kill()
        for fleet in self.fleets:
            if fleet.proc is not None:
                await fleet.proc.wait()
        self.fleets = []

    async def wait_delivered(self, expected: int, timeout: float) -> tuple[int, float]:
        """Until the fleets saw ``expected`` ``delivered`` report_acks; (count, seconds waited)."""
        started = time.monotonic()
        count = 0
        while time.monotonic() - started < timeout:
            count = sum(s["delivered_acked"] for s in await self.fleet_all({"cmd": "stats"}))
            if count >= expected:
                break
            await asyncio.sleep(0.2)  # the fleets live in other processes: asking is the only way
        return count, time.monotonic() - started

    async def dump_records(self) -> dict[str, list[float]]:
        """Every fleet's per-message records, merged (radio sends summed)."""
        merged: dict[str, list[float]] = {}
        for k, fleet in enumerate(self.fleets):
            path = self.tmp / f"records-{k}.json"
            await fleet.command({"cmd": "dump", "path": str(path)})
            for message_id, rec in msgspec.json.decode(
                path.read_bytes(), type=dict[str, list[float]]
            ).items():
                old = merged.get(message_id)
                if old is None:
                    merged[message_id] = rec
                else:
                    old[4] += rec[4]
        return merged

    # --- load -------------------------------------------------------------------------------

    async def load(self, **fields: Any) -> LoadResult:
        """Run the load generator process once and read its result."""
        self._fleet_seq += 1
        out = self.tmp / f"load-{self._fleet_seq}.json"
        if "port" not in fields:
            assert self.gateway is not None
            fields["port"] = self.gateway.http_port
        fields.setdefault("token", self.token)
        config = LoadConfig(out=str(out), **fields)
        path = self.tmp / f"load-{self._fleet_seq}-config.json"
        path.write_bytes(msgspec.json.encode(config))
        code, output = await run_module("bench.loadgen", str(path), timeout=config.duration + 90)
        if code != 0:
            raise RuntimeError(f"loadgen failed ({code}): {output[-800:]}")
        return msgspec.json.decode(out.read_bytes(), type=LoadResult)
