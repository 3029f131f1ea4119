"""The load generator, in its own process: ``python -m bench.loadgen CONFIG.json``.

Modes (``LoadConfig.mode``):

* ``sms`` — open loop: ``POST /v1/sms/send`` scheduled at ``rate`` per second for ``duration``
  seconds, whatever the answers do (a slow answer never delays the next request, so queueing
  shows up in the latency instead of hiding it). Latency runs from the *scheduled* instant to
  the complete answer.
* ``otp`` — open loop of OTP pairs: ``POST /v1/otp/send``, learn the code the way a phone-side
  observer does (the relay fleet's record file, one JSON line per SMS), ``POST /v1/otp/verify``.
* ``hello`` — calibration: ``GET path`` open loop at ``rate``, or closed loop with
  ``concurrency`` workers when ``concurrency`` > 0 (the most this machine serves at all).

Every loop is bounded by a count and a deadline. The result is one JSON file (``out``).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import uvloop

from bench.httpclient import HttpPool, HttpResponse
from bench.sysstat import raise_fd_limit

__all__ = ["LoadConfig", "LoadResult", "main"]

CODE = re.compile(rb"\b(\d{4,10})\b")
MAX_REQUESTS = 1_000_000
GRACE_SECONDS = 30.0
"""How long answers may still arrive after the schedule ends."""


class LoadConfig(msgspec.Struct, kw_only=True):
    """One load run."""

    mode: str
    host: str = "127.0.0.1"
    port: int
    path: str = "/api/v1/sms/send"
    token: str = ""
    rate: float = 100.0
    duration: float = 1.0
    concurrency: int = 0
    pool: int = 256
    number_base: int = 0
    """Recipients are ``+99890`` + 7 digits starting here, one new number per request."""
    record: str | None = None
    priority: str | None = None
    """``priority`` of the ``sms`` sends (None: the API's default)."""
    out: str


class LoadResult(msgspec.Struct, kw_only=True):
    """What the runner reads back."""

    mode: str
    offered_rate: float
    scheduled: int
    completed: int
    ok: int
    errors: dict[str, int]
    elapsed: float
    latency_ms: list[float]
    """Per successful request (sms/hello) or per pair leg (otp: the send)."""
    accepted: list[tuple[str, float]] = []
    """``(request_id, monotonic time of the answer)`` of every accepted message."""
    verify_ms: list[float] = []
    code_wait_ms: list[float] = []
    pair_ms: list[float] = []
    verified: int = 0
    sample_error: str = ""


def _number(i: int) -> str:
    return f"+99890{i % 10_000_000:07d}"


class LoadGen:
    """One run of :class:`LoadConfig`; :meth:`run` returns its :class:`LoadResult`."""

    def __init__(self, config: LoadConfig) -> None:
        self.c = config
        headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
        self.http = HttpPool(config.host, config.port, max(1, config.pool), headers)
        self.latency: list[float] = []
        self.accepted: list[tuple[str, float]] = []
        self.errors: dict[str, int] = {}
        self.ok = 0
        self.completed = 0
        self.verify_ms: list[float] = []
        self.code_wait_ms: list[float] = []
        self.pair_ms: list[float] = []
        self.verified = 0
        self.sample_error = ""
        self.codes: dict[str, asyncio.Future[str]] = {}

    def _error(self, key: str, detail: str = "") -> None:
        self.errors[key] = self.errors.get(key, 0) + 1
        if detail and not self.sample_error:
            self.sample_error = detail[:300]

    async def run(self) -> LoadResult:
        """Run the schedule (or the closed loop), wait for the answers, return the result."""
        c = self.c
        started = time.monotonic()
        tailer = asyncio.ensure_future(self._tail_codes()) if c.mode == "otp" else None
        if c.concurrency > 0:
            deadline = started + c.duration
            workers = [asyncio.ensure_future(self._worker(deadline)) for _ in range(c.concurrency)]
            await asyncio.gather(*workers)
            scheduled = self.completed
        else:
            scheduled = await self._open_loop(started)
        elapsed = time.monotonic() - started
        if tailer is not None:
            tailer.cancel()
        self.http.close()
        return LoadResult(
            mode=c.mode,
            offered_rate=c.rate,
            scheduled=scheduled,
            completed=self.completed,
            ok=self.ok,
            errors=self.errors,
            elapsed=elapsed,
            latency_ms=self.latency,
            accepted=self.accepted,
            verify_ms=self.verify_ms,
            code_wait_ms=self.code_wait_ms,
            pair_ms=self.pair_ms,
            verified=self.verified,
            sample_error=self.sample_error,
        )

    async def _open_loop(self, started: float) -> int:
        c = self.c
        total = min(MAX_REQUESTS, int(c.rate * c.duration))
        tasks: set[asyncio.Task[None]] = set()
        one = self._otp_pair if c.mode == "otp" else self._one
        for i in range(total):
            due = started + i / c.rate
            delay = due - time.monotonic()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            task = asyncio.ensure_future(one(i, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=GRACE_SECONDS)
        for task in list(tasks):
            task.cancel()
            self._error("unanswered after grace", f"no answer {GRACE_SECONDS}s after the schedule ended")
        return total

    async def _worker(self, deadline: float) -> None:
        i = 0
        while time.monotonic() < deadline and i < MAX_REQUESTS:
            await self._one(i, time.monotonic())
            i += 1

    def _body(self, i: int) -> bytes:
        c = self.c
        if c.mode == "otp":
            return json.dumps({"to": _number(c.number_base + i), "purpose": "login"}).encode()
        body: dict[str, Any] = {"to": _number(c.number_base + i), "message": f"bench message {i}"}
        if c.priority is not None:
            body["priority"] = c.priority
        return json.dumps(body).encode()

    async def _call(self, method: str, path: str, body: bytes) -> HttpResponse | None:
        try:
            return await self.http.request(method, path, body)
        except (OSError, TimeoutError, ConnectionError) as exc:
            self._error(type(exc).__name__, repr(exc))
            return None

    async def _one(self, i: int, due: float) -> None:
        c = self.c
        method = "GET" if c.mode == "hello" else "POST"
        response = await self._call(method, c.path, b"" if c.mode == "hello" else self._body(i))
        done = time.monotonic()
        self.completed += 1
        if response is None:
            return
        if response.status >= 300:
            self._error(str(response.status), response.body.decode(errors="replace"))
            return
        self.ok += 1
        self.latency.append((done - due) * 1000)
        if c.mode == "sms":
            self.accepted.append((json.loads(response.body)["request_id"], done))

    async def _otp_pair(self, i: int, due: float) -> None:
        response = await self._call("POST", "/api/v1/otp/send", self._body(i))
        sent = time.monotonic()
        self.completed += 1
        if response is None:
            return
        if response.status >= 300:
            self._error(f"send {response.status}", response.body.decode(errors="replace"))
            return
        answer = json.loads(response.body)
        otp_id, request_id = answer["otp_id"], answer.get("request_id", "")
        self.ok += 1
        self.latency.append((sent - due) * 1000)
        waiter = self.codes.setdefault(request_id, asyncio.get_running_loop().create_future())
        try:
            code = await asyncio.wait_for(waiter, GRACE_SECONDS)
        except TimeoutError:
            self._error("code never seen")
            return
        finally:
            self.codes.pop(request_id, None)
        seen = time.monotonic()
        self.code_wait_ms.append((seen - sent) * 1000)
        body = json.dumps({"otp_id": otp_id, "code": code}).encode()
        response = await self._call("POST", "/api/v1/otp/verify", body)
        done = time.monotonic()
        if response is None:
            return
        if response.status >= 300 or json.loads(response.body).get("status") != "success":
            self._error(f"verify {response.status}", response.body.decode(errors="replace"))
            return
        self.verified += 1
        self.verify_ms.append((done - seen) * 1000)
        self.pair_ms.append((done - due) * 1000)

    async def _tail_codes(self) -> None:
        """Follow the fleet's record file and hand each OTP code to the pair waiting for it."""
        assert self.c.record is not None
        path = Path(self.c.record)
        deadline = time.monotonic() + self.c.duration + 2 * GRACE_SECONDS
        offset = 0
        pending = b""
        while time.monotonic() < deadline:
            chunk = _read_from(path, offset)
            offset += len(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._code_seen(line)
            if not chunk:
                await asyncio.sleep(0.005)  # a file has no wake-up; the pause bounds the wait

    def _code_seen(self, line: bytes) -> None:
        try:
            record: dict[str, Any] = json.loads(line)
        except ValueError:
            return
        match = CODE.search(str(record.get("message", "")).encode())
        if match is None:
            return
        waiter = self.codes.setdefault(str(record.get("id")), asyncio.get_running_loop().create_future())
        if not waiter.done():
            waiter.set_result(match.group(1).decode())


def _read_from(path: Path, offset: int) -> bytes:
    """What was appended to ``path`` after ``offset`` (small reads of a local file)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b""


def main() -> None:
    """Entry point: ``python -m bench.loadgen CONFIG.json``."""
    raise_fd_limit()
    config = msgspec.json.decode(Path(sys.argv[1]).read_bytes(), type=LoadConfig)
    result = uvloop.run(LoadGen(config).run())
    Path(config.out).write_bytes(msgspec.json.encode(result))


if __name__ == "__main__":
    main()
