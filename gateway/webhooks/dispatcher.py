"""The webhook dispatcher: outbox → deliveries → signed HTTP attempts, with retries and a log.

* **Fan-out.** Events committed to the ``events`` outbox (by the send pipeline, the relay hub,
  OTP verification) are matched to the account's enabled endpoints subscribed to their type;
  each match becomes a ``webhook_deliveries`` row. A PostgreSQL ``NOTIFY`` on insert wakes the
  dispatcher, so an event survives a crash between its commit and its delivery.
* **Attempts.** Due deliveries are attempted concurrently (``concurrency`` in total and
  ``per_endpoint`` per endpoint, so a slow or dead endpoint can hold only its own slots), with
  one shared aiohttp session: 15 s timeout, redirects not followed, the SSRF guard resolving and
  checking every address. 2xx is success; 410 disables the endpoint; 429/503 ``Retry-After`` is
  honoured; anything else, a timeout or a connection error is retried on ``schedule`` (with
  ±10 % jitter) until the schedule is used up, then the delivery is ``failed``. A blocked target
  is logged ``blocked`` and not retried.
* Every attempt is a ``webhook_attempts`` row, written with the delivery's new state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.ids import id_time
from gateway.logs import get_logger
from gateway.metrics import METRICS
from gateway.timefmt import rfc3339
from gateway.webhooks.signing import signature_headers
from gateway.webhooks.ssrf import BlockedAddress, GuardedResolver, check_address
from store import queries as q
from store.database import CONNECT_TIMEOUT, DATABASE_DOWN, connect

__all__ = ["DEFAULT_SCHEDULE", "WebhookDispatcher"]

log = get_logger("gateway.webhooks")

DEFAULT_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
EXCERPT_BYTES = 512
MAX_RETRY_AFTER = 24 * 3600.0
FAN_OUT_BATCH = 500
SAFETY_WAKE = 5.0  # seconds: re-check even if a NOTIFY was missed (e.g. the listener reconnected)
DATABASE_RETRY = 1.0  # seconds between rounds while the database is unreachable
_LISTEN_ERRORS: tuple[type[BaseException], ...] = (*DATABASE_DOWN, asyncpg.PostgresError)


@dataclass(frozen=True, slots=True)
class _Due:
    id: str
    endpoint_id: str
    event_id: str
    attempts: int
    manual: bool
    body: bytes


@dataclass(frozen=True, slots=True)
class _Outcome:
    outcome: str  # succeeded | failed | blocked
    http_status: int | None = None
    error: str | None = None
    excerpt: str | None = None
    retry_after: float | None = None
    gone: bool = False


def event_body(event_type: str, created_at: datetime, data: Any) -> bytes:
    """``{"type", "timestamp", "data"}`` — the same bytes on every attempt."""
    return json.dumps(
        {"type": event_type, "timestamp": rfc3339(created_at), "data": data}, separators=(",", ":")
    ).encode()


def _retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return min(float(value.strip()), MAX_RETRY_AFTER)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(0.0, (moment - now).total_seconds()), MAX_RETRY_AFTER)


class WebhookDispatcher:
    """Fans events out to endpoints and delivers them."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        database_url: str,
        *,
        allow_private: bool,
        schedule: Sequence[float] = DEFAULT_SCHEDULE,
        timeout: float = 15.0,
        concurrency: int = 32,
        per_endpoint: int = 4,
        rng: random.Random | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._database_url = database_url
        self._allow_private = allow_private
        self._schedule = tuple(schedule)
        self._timeout = timeout
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._per_endpoint = per_endpoint
        self._endpoint_slots: dict[str, asyncio.Semaphore] = {}
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._in_progress: set[str] = set()
        self._attempts: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._listener: asyncpg.Connection[Any] | None = None

    @property
    def in_progress(self) -> int:
        """Deliveries being attempted right now."""
        return len(self._in_progress)

    def wake(self) -> None:
        """Something may be due (new events, a manual retry)."""
        self._wake.set()

    async def run(self) -> None:
        """Background task ``webhooks.dispatch``."""
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(allow_private=self._allow_private),
            use_dns_cache=False,
            limit=self._concurrency,
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self._timeout)
        )
        try:
            while True:
                self._wake.clear()
                try:
                    if self._listener is None or self._listener.is_closed():
                        await self._listen()  # again after the database restarted
                    await self._fan_out()
                    await self._start_due()
                    await self._sleep_until_due()
                except DATABASE_DOWN as exc:  # events wait in the outbox; try again shortly
                    log.warning("webhooks.database_unavailable", error=repr(exc))
                    await asyncio.sleep(DATABASE_RETRY)
        finally:
            await self.close()

    async def close(self) -> None:
        """Cancel attempts in progress (they will be retried after a restart) and release resources."""
        for task in list(self._attempts):
            task.cancel()
        await asyncio.gather(*self._attempts, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    async def _listen(self) -> None:
        """(Re)open the ``LISTEN`` connection; its loss wakes the loop, which opens it again."""
        if self._listener is not None:
            self._listener.terminate()
            self._listener = None
        try:
            listener = await connect(self._database_url, timeout=CONNECT_TIMEOUT)
        except _LISTEN_ERRORS as exc:  # the safety wake still covers us
            log.warning("webhooks.listen_failed", error=repr(exc))
            return
        try:
            await listener.add_listener("relaygate_events", lambda *_: self._wake.set())
        except _LISTEN_ERRORS as exc:
            listener.terminate()
            log.warning("webhooks.listen_failed", error=repr(exc))
            return
        listener.add_termination_listener(lambda _: self._wake.set())
        self._listener = listener

    async def _sleep_until_due(self) -> None:
        next_due = await self._pool.fetchval(q.DELIVERIES_NEXT_DUE, list(self._in_progress))
        timeout = SAFETY_WAKE
        if next_due is not None:
            timeout = min(timeout, max(0.0, (next_due - self._clock.now()).total_seconds()))
        if self._wake.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()

    async def _fan_out(self) -> None:
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(q.EVENTS_PENDING, FAN_OUT_BATCH)
                if not rows:
                    return
                ids = [r["id"] for r in rows]
                await conn.execute(q.DELIVERIES_FAN_OUT, ids)
                await conn.execute(q.EVENTS_MARK_FANNED_OUT, ids)
            if len(rows) < FAN_OUT_BATCH:
                return

    async def _start_due(self) -> None:
        free = self._concurrency * 2 - len(self._in_progress)
        if free <= 0:
            return
        rows = await self._pool.fetch(q.DELIVERIES_DUE, free, list(self._in_progress))
        for r in rows:
            due = _Due(
                id=r["id"],
                endpoint_id=r["endpoint_id"],
                event_id=r["event_id"],
                attempts=r["attempts"],
                manual=r["manual"],
                body=event_body(r["type"], r["created_at"], r["data"]),
            )
            self._in_progress.add(due.id)
            task = asyncio.create_task(self._attempt(due), name=f"webhooks.attempt.{due.id}")
            self._attempts.add(task)
            task.add_done_callback(self._attempt_done)

    def _attempt_done(self, task: asyncio.Task[None]) -> None:
        self._attempts.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhooks.attempt_crashed", error=repr(task.exception()), exc_info=task.exception())
        self._wake.set()

    async def _attempt(self, due: _Due) -> None:
        slots = self._endpoint_slots.setdefault(due.endpoint_id, asyncio.Semaphore(self._per_endpoint))
        try:
            async with self._slots, slots:
                await self._attempt_now(due)
        finally:
            self._in_progress.discard(due.id)

    async def _attempt_now(self, due: _Due) -> None:
        target = await self._pool.fetchrow(q.WEBHOOK_TARGET, due.endpoint_id)
        started = self._clock.now()
        if target is None or target["deleted"] or not target["enabled"]:
            result = _Outcome("failed", error="endpoint_disabled")
            await self._record(due, result, started, 0, final=True)
            return
        secrets_in_use = [target["secret"]] + (
            [target["previous_secret"]] if target["previous_secret"] else []
        )
        posted_at = self._clock.monotonic()
        result = await self._post(target["url"], due, secrets_in_use)
        duration_ms = int((self._clock.monotonic() - posted_at) * 1000)
        await self._record(due, result, started, duration_ms, final=False)
        if result.gone:
            await self._pool.execute(q.WEBHOOK_DISABLE, due.endpoint_id, "endpoint answered 410 Gone")
            await self._pool.execute(q.DELIVERIES_CANCEL_FOR_ENDPOINT, due.endpoint_id)
            log.warning("webhooks.endpoint_disabled", endpoint_id=due.endpoint_id, reason="410")

    async def _post(self, url: str, due: _Due, secrets_in_use: list[str]) -> _Outcome:
        assert self._session is not None
        host = urlsplit(url).hostname or ""
        try:
            with contextlib.suppress(ValueError):  # a literal address bypasses the resolver
                check_address(host.strip("[]"), allow_private=self._allow_private)
            headers = signature_headers(secrets_in_use, due.event_id, int(self._clock.time()), due.body)
            async with self._session.post(url, data=due.body, headers=headers, allow_redirects=False) as resp:
                # The customer's bytes: PostgreSQL cannot store U+0000 in text, so it is shown as U+FFFD.
                raw = await resp.content.read(EXCERPT_BYTES)
                excerpt = raw.decode("utf-8", "replace").replace("\x00", "\ufffd")
                if 200 <= resp.status < 300:
                    return _Outcome("succeeded", http_status=resp.status, excerpt=excerpt)
                retry_after = (
                    _retry_after(resp.headers.get("Retry-After"), self._clock.now())
                    if resp.status in (429, 503)
                    else None
                )
                return _Outcome(
                    "failed",
                    http_status=resp.status,
                    excerpt=excerpt,
                    retry_after=retry_after,
                    gone=resp.status == 410,
                )
        except BlockedAddress as exc:
            return _Outcome("blocked", error=f"blocked: {exc}")
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, BlockedAddress):
                return _Outcome("blocked", error=f"blocked: {exc.os_error}")
            return _Outcome("failed", error=f"connection_error: {type(exc).__name__}")
        except TimeoutError:
            return _Outcome("failed", error="timeout")
        except aiohttp.ClientError as exc:
            return _Outcome("failed", error=f"connection_error: {type(exc).__name__}")

    def _next_attempt(self, attempts_done: int, result: _Outcome) -> datetime | None:
        if result.outcome != "failed" or result.gone or attempts_done >= len(self._schedule):
            return None
        delay = self._schedule[attempts_done] * self._rng.uniform(0.9, 1.1)
        if result.retry_after is not None:
            delay = max(delay, result.retry_after)
        return self._clock.now() + timedelta(seconds=delay)

    async def _record(
        self, due: _Due, result: _Outcome, started: datetime, duration_ms: int, *, final: bool
    ) -> None:
        attempts_done = due.attempts + 1
        next_at = None if final else self._next_attempt(attempts_done, result)
        METRICS.webhook_attempt(result.outcome)
        if result.outcome == "succeeded" and not due.manual:
            # an event id not made by the gateway (an import, a test fixture) carries no time;
            # the metric must never keep the attempt from being recorded
            with contextlib.suppress(ValueError, IndexError):
                METRICS.event_to_webhook.observe(max(0.0, self._clock.time() - id_time(due.event_id)))
        if result.outcome == "succeeded":
            status = "succeeded"
        elif result.outcome == "blocked":
            status = "blocked"
        else:
            status = "pending" if next_at is not None else "failed"
        await self._pool.execute(
            q.ATTEMPT_RECORD,
            due.id,
            status,
            next_at,
            started,
            "manual" if due.manual else "scheduled",
            duration_ms,
            result.http_status,
            result.error,
            result.excerpt,
            result.outcome,
        )
        log.info(
            "webhooks.attempt",
            delivery_id=due.id,
            attempt=attempts_done,
            outcome=result.outcome,
            http_status=result.http_status,
            error=result.error,
            status=status,
        )
