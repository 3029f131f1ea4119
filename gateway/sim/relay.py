"""A simulated relay fleet: many phones in one process, over real sockets, for tests and demos.

:class:`RelayFleet` pairs phones through the public HTTP API (one pairing code per phone;
even-numbered phones send the ``code``, odd-numbered ones the ``qr_payload``), or reloads them
from ``devices.json`` in :attr:`SimOptions.state_dir`, then runs one
:class:`~gateway.sim.phone.SimulatedRelay` per phone. Pairing and handshakes run with
bounded concurrency over one aiohttp session; a 429 is retried after its ``Retry-After``.
Every SMS a phone "sends" is kept in :attr:`RelayFleet.sent` and appended as a JSON line to
:attr:`SimOptions.record`.

The CLI body :func:`run_relay_sim` runs a fleet until SIGINT/SIGTERM;
:func:`add_arguments` and :func:`options_from_args` build its :class:`SimOptions`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Final

import aiohttp
import msgspec

from gateway.logs import get_logger
from gateway.sim.phone import RelayState, SimOptions, SimulatedRelay

__all__ = [
    "RelayFleet",
    "RelaySimError",
    "SimOptions",
    "SimulatedRelay",
    "add_arguments",
    "options_from_args",
    "run_relay_sim",
]

log = get_logger("gateway.sim.relay")

STATE_FILE: Final = "devices.json"
MAX_RATE_LIMITED_RETRIES: Final = 100


class RelaySimError(Exception):
    """Pairing failed, or the fleet could not get connected in time."""


class _PairingCode(msgspec.Struct):
    """The part of ``POST /v1/devices/pairing-codes``'s answer the phone needs."""

    code: str
    qr_payload: str


class _Paired(msgspec.Struct):
    """``POST /v1/relay/app/pair``'s answer: the device credential and where to connect."""

    device_id: str
    device_token: str
    ws_url: str
    heartbeat_interval_seconds: int


class _FleetState(msgspec.Struct, kw_only=True):
    """Contents of ``devices.json``."""

    version: int = 1
    api_url: str
    devices: list[RelayState]


class RelayFleet:
    """A running fleet of simulated relays; build it with :meth:`start`, end it with :meth:`stop`."""

    def __init__(self, options: SimOptions, announce: Callable[[str], None] | None = None) -> None:
        self.options = options
        self.relays: list[SimulatedRelay] = []
        self.sent: list[dict[str, Any]] = []
        """Every SMS any relay "sent", in order: ``device_id, id, to, message, sim_slot, at``."""
        self._announce = announce
        self._rng = random.Random(options.seed)
        self._gate = asyncio.Semaphore(max(1, options.connect_concurrency))
        self._record: IO[bytes] | None = None

    @classmethod
    async def start(
        cls,
        options: SimOptions,
        *,
        timeout: float = 30.0,
        announce: Callable[[str], None] | None = None,
    ) -> RelayFleet:
        """Pair (or reload) ``options.devices`` relays, connect them all, and return the fleet.

        Returns once every relay received ``welcome``. Raises :class:`RelaySimError` if pairing
        fails, or if the relays are not all connected ``timeout`` seconds after pairing; the
        relays already started are stopped first. ``announce`` gets one line per device
        paired and per connection.
        """
        fleet = cls(options, announce)
        states = fleet._load_states()
        if len(states) < options.devices:
            states += await fleet._pair_missing(range(len(states), options.devices))
            fleet._save_states(states)
        try:
            if options.record is not None:
                fleet._record = options.record.open("ab")
            for state in states:
                relay = SimulatedRelay(
                    state,
                    options,
                    fleet._rng,
                    gate=fleet._gate,
                    on_sent=fleet._on_sent,
                    on_welcome=fleet._on_welcome,
                )
                fleet.relays.append(relay)
                relay.start()
            await fleet.wait_connected(timeout)
        except BaseException:
            await fleet.stop()
            raise
        return fleet

    async def wait_connected(self, timeout: float) -> None:
        """Until every relay has an open session.

        Raises :class:`RelaySimError` after ``timeout``, or as soon as a relay stopped for good
        (refused with 401, unpaired, replaced).
        """
        try:
            async with asyncio.timeout(timeout):
                for relay in self.relays:
                    if not await relay.wait_connected():
                        raise RelaySimError(f"relay {relay.device_id} stopped: {relay.stopped_reason}")
        except TimeoutError:
            up = sum(relay.connected.is_set() for relay in self.relays)
            raise RelaySimError(f"{up} of {len(self.relays)} relays connected after {timeout}s") from None

    def relay(self, device_id: str) -> SimulatedRelay:
        """The relay with ``device_id`` (KeyError if none)."""
        for relay in self.relays:
            if relay.device_id == device_id:
                return relay
        raise KeyError(device_id)

    async def stop(self) -> None:
        """Close every socket normally, stop every timer, then save state and close the record."""
        await asyncio.gather(*(relay.stop() for relay in self.relays))
        if self.relays:
            self._save_states([relay.snapshot() for relay in self.relays])
        if self._record is not None:
            self._record.close()
            self._record = None

    # --- callbacks from relays --------------------------------------------------------------

    def _on_sent(self, record: dict[str, Any]) -> None:
        self.sent.append(record)
        if self._record is not None:
            self._record.write(msgspec.json.encode(record) + b"\n")
            self._record.flush()

    def _on_welcome(self, relay: SimulatedRelay) -> None:
        verb = "connected" if relay.connections == 1 else "reconnected"
        self._say(f"{verb} {relay.device_id} ({relay.name})")

    def _say(self, line: str) -> None:
        if self._announce is not None:
            self._announce(line)

    # --- pairing ----------------------------------------------------------------------------

    async def _pair_missing(self, indexes: range) -> list[RelayState]:
        """Pair one new relay per index, at most ``connect_concurrency`` at a time."""
        connector = aiohttp.TCPConnector(limit=max(1, self.options.connect_concurrency))
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            tasks = [asyncio.create_task(self._pair_one(http, i), name=f"relaysim.pair.{i}") for i in indexes]
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

    async def _pair_one(self, http: aiohttp.ClientSession, index: int) -> RelayState:
        """Create a code with the access token, then spend it like the app does."""
        o = self.options
        name = f"{o.name_prefix} {index + 1}"
        async with self._gate:
            raw = await _post(http, f"{o.api_url}/v1/devices/pairing-codes", {}, o.token, 201)
            code = msgspec.json.decode(raw, type=_PairingCode)
            body = {"name": name, "model": o.model, "app_version": o.app_version}
            if index % 2:
                body["qr_payload"] = code.qr_payload
            else:
                body["code"] = code.code
            raw = await _post(http, f"{o.api_url}/v1/relay/app/pair", body, None, 200)
            paired = msgspec.json.decode(raw, type=_Paired)
        self._say(f"paired {paired.device_id} ({name})")
        log.info("sim.paired", device_id=paired.device_id, name=name)
        return RelayState(
            index=index,
            device_id=paired.device_id,
            device_token=paired.device_token,
            ws_url=paired.ws_url,
            name=name,
            heartbeat_interval=float(paired.heartbeat_interval_seconds),
        )

    # --- state ------------------------------------------------------------------------------

    def _state_path(self) -> Path | None:
        return None if self.options.state_dir is None else self.options.state_dir / STATE_FILE

    def _load_states(self) -> list[RelayState]:
        """The first ``devices`` relays saved in ``devices.json``, if any."""
        path = self._state_path()
        if path is None or not path.exists():
            return []
        saved = msgspec.json.decode(path.read_bytes(), type=_FleetState)
        return sorted(saved.devices, key=lambda s: s.index)[: self.options.devices]

    def _save_states(self, states: list[RelayState]) -> None:
        """Write ``devices.json`` atomically, keeping saved relays this run did not use."""
        path = self._state_path()
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = {s.index: s for s in self._load_all(path)}
        merged.update({s.index: s for s in states})
        data = _FleetState(
            api_url=self.options.api_url, devices=sorted(merged.values(), key=lambda s: s.index)
        )
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.format(msgspec.json.encode(data)))
        os.replace(tmp, path)

    @staticmethod
    def _load_all(path: Path) -> list[RelayState]:
        if not path.exists():
            return []
        return msgspec.json.decode(path.read_bytes(), type=_FleetState).devices


async def _post(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], token: str | None, expect: int
) -> bytes:
    """POST JSON and return the raw answer; wait and retry on 429, raise on any other error."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    payload = msgspec.json.encode(body)
    for _ in range(MAX_RATE_LIMITED_RETRIES):
        try:
            async with http.post(url, data=payload, headers=headers) as resp:
                raw = await resp.read()
                if resp.status == expect:
                    return raw
                if resp.status != 429:
                    raise RelaySimError(f"POST {url}: HTTP {resp.status}: {raw[:300]!r}")
                retry_after = _seconds(resp.headers.get("Retry-After"))
        except aiohttp.ClientError as exc:
            raise RelaySimError(f"POST {url}: {exc!r}") from exc
        log.info("sim.rate_limited", url=url, retry_after=retry_after)
        await asyncio.sleep(retry_after)
    raise RelaySimError(f"POST {url}: still rate limited after {MAX_RATE_LIMITED_RETRIES} tries")


def _seconds(value: str | None) -> float:
    """A ``Retry-After`` in seconds (1 when missing or not a number)."""
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except ValueError:
        return 1.0


# --- CLI ------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's flags to ``parser`` (a subcommand's parser)."""
    parser.add_argument("--api-url", required=True, help="gateway API base, e.g. http://127.0.0.1:8080/api")
    parser.add_argument("--token", required=True, help="access token with the devices.manage scope")
    parser.add_argument("--devices", type=int, default=1, help="number of relays (default 1)")
    parser.add_argument("--state-dir", type=Path, help="keep credentials here to reuse relays on restart")
    parser.add_argument("--record", type=Path, help="append one JSON line per SMS sent to this file")
    parser.add_argument("--sent-delay", type=float, default=0.05, help="seconds to 'sent' (±50%%)")
    parser.add_argument("--delivered-delay", type=float, default=0.2, help="seconds to 'delivered' (±50%%)")
    parser.add_argument("--failure-rate", type=float, default=0.0, help="probability a send fails (0-1)")
    parser.add_argument("--failure-reason", default="generic_failure", help="reason of simulated failures")
    parser.add_argument(
        "--per-minute-limit", type=int, help="sends per minute per phone before limit_exceeded"
    )
    parser.add_argument("--heartbeat-interval", type=float, help="override the gateway's heartbeat interval")
    parser.add_argument("--seed", type=int, help="random seed for jitter and failures")


def options_from_args(args: argparse.Namespace) -> SimOptions:
    """The :class:`SimOptions` for parsed :func:`add_arguments` flags."""
    if args.devices < 1:
        raise SystemExit("relaysim: --devices must be at least 1")
    if not 0.0 <= args.failure_rate <= 1.0:
        raise SystemExit("relaysim: --failure-rate must be between 0 and 1")
    return SimOptions(
        api_url=args.api_url.rstrip("/"),
        token=args.token,
        devices=args.devices,
        state_dir=args.state_dir,
        record=args.record,
        sent_delay=args.sent_delay,
        delivered_delay=args.delivered_delay,
        failure_rate=args.failure_rate,
        failure_reason=args.failure_reason,
        per_minute_limit=args.per_minute_limit,
        heartbeat_interval=args.heartbeat_interval,
        seed=args.seed,
    )


async def run_relay_sim(options: SimOptions) -> int:
    """Run a fleet until SIGINT/SIGTERM, printing one line per device paired and connected."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            fleet = await RelayFleet.start(options, announce=lambda line: print(line, flush=True))
        except RelaySimError as exc:
            print(f"relaysim: {exc}", file=sys.stderr, flush=True)
            return 1
        print(f"{len(fleet.relays)} relays connected; Ctrl-C to stop", flush=True)
        await stop.wait()
        # Shutdown order: close sockets (1000) and timers, save state, close the record file.
        await fleet.stop()
        print(f"stopped; {len(fleet.sent)} SMS sent", flush=True)
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
