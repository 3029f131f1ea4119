"""The webhook dispatcher: outbox → deliveries → signed HTTP attempts, with retries and a log.

* **Fan-out.** Events committed to the ``events`` outbox (by the send pipeline, the relay hub,
  OTP verification) are matched to the account's enabled endpoints subscribed to their type;
  each match becomes a ``webhook_deliveries`` row. A PostgreSQL ``NOTIFY`` on insert wakes the
  dispatcher, so an event survives a crash between its commit and its delivery. Fan-out runs
  when a ``NOTIFY`` came (or the safety wake fired) and is one statement per 500 events.
* **Attempts.** Due deliveries are taken in one statement per round, with their event and their
  endpoint, and attempted concurrently (``concurrency`` requests in total and ``per_endpoint``
  per endpoint, so a slow or dead endpoint can hold only its own slots), with one shared
  aiohttp session: 15 s timeout, redirects not followed, the SSRF guard resolving and checking
  every address. 2xx is success; 410 disables the endpoint; 429/503 ``Retry-After`` is
  honoured; anything else, a timeout or a connection error is retried on ``schedule`` (with
  ±10 % jitter) until the schedule is used up, then the delivery is ``failed``. A blocked target
  is logged ``blocked`` and not retried. An attempt that had to wait for a slot uses its endpoint
  as read less than a second ago, or reads it again (it may have been disabled or deleted
  meanwhile; the API's changes in this process are seen at once, :meth:`forget`). While at
  least ``concurrency`` requests wait or run, new deliveries are taken at most every 50 ms, so
  a backlog costs a query per batch of finished attempts, not one per attempt.
* **Batched endpoints** (``batch_max_events`` set) get up to that many due deliveries in one
  signed request (``gateway/webhooks/payloads.py``), sent when that many are due or the first
  of them waited ``batch_max_wait_ms``; every delivery in it gets its own attempt row.
* Every attempt is a ``webhook_attempts`` row, written with the delivery's new state; the rows
  of attempts finishing together are written by one statement (group commit,
  ``webhooks.record``). A delivery counts as in progress until its row is committed, so it is
  never taken twice; an attempt whose row could not be written is attempted again (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import asyncpg

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.ids import id_time
from gateway.logs import get_logger
from gateway.metrics import METRICS
from gateway.webhooks.payloads import batch_body, batch_webhook_id, event_body
from gateway.webhooks.request import Outcome, post
from gateway.webhooks.signing import signature_headers
from gateway.webhooks.ssrf import GuardedResolver
from store import webhooks as store
from store.batcher import Batcher
from store.database import CONNECT_TIMEOUT, DATABASE_DOWN, connect

__all__ = ["DEFAULT_SCHEDULE", "WebhookDispatcher"]

log = get_logger("gateway.webhooks")

DEFAULT_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
FAN_OUT_BATCH = 500
SAFETY_WAKE = 5.0  # seconds: re-check even if a NOTIFY was missed (e.g. the listener reconnected)
DATABASE_RETRY = 1.0  # seconds between rounds while the database is unreachable
RECORDER_CLOSE_TIMEOUT = 5.0  # seconds to write the attempts finished before a shutdown
TARGET_FRESH = 1.0  # seconds an endpoint read is used for attempts that waited for a slot
TAKE_INTERVAL = 0.05  # seconds: with fewer than `concurrency` free places, take at most this often
_LISTEN_ERRORS: tuple[type[BaseException], ...] = (*DATABASE_DOWN, asyncpg.PostgresError)


@dataclass(frozen=True, slots=True)
class _Due:
    id: str
    endpoint_id: str
    event_id: str
    attempts: int
    manual: bool
    created_at: datetime
    body: bytes


@dataclass(frozen=True, slots=True)
class _Target:
    url: str
    active: bool
    secrets: list[str]  # signing now: the current one, and the previous one during a rotation
    batch_max_events: int | None
    batch_max_wait_ms: int | None


@dataclass(slots=True)
class _Pending:
    """Due deliveries of a batched endpoint waiting to fill a request (in progress already)."""

    target: _Target
    deadline: float  # monotonic: send even if not full
    items: list[_Due] = field(default_factory=list)


def _target(row: store.DueRow | store.TargetRow) -> _Target:
    return _Target(
        url=row.url,
        active=row.active,
        secrets=[row.secret] + ([row.previous_secret] if row.previous_secret else []),
        batch_max_events=row.batch_max_events,
        batch_max_wait_ms=row.batch_max_wait_ms,
    )


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
        self._events_waiting = True  # fan out at start: events may have been committed while down
        self._fanned_out_at = 0.0  # monotonic
        self._next_due: datetime | None = None
        self._took_at = -TAKE_INTERVAL  # monotonic
        self._in_progress: set[str] = set()
        self._pending: dict[str, _Pending] = {}  # endpoint id → deliveries filling a batched request
        self._targets: dict[str, tuple[_Target, float]] = {}  # endpoint id → last read, monotonic when
        self._attempts: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._listener: asyncpg.Connection[Any] | None = None
        self._recorder: Batcher[list[store.AttemptRecord], None] = Batcher(
            pool, store.record_attempts, name="webhooks.record", one_statement=True
        )

    @property
    def in_progress(self) -> int:
        """Deliveries being attempted right now (or waiting to fill a batched request)."""
        return len(self._in_progress)

    def wake(self) -> None:
        """Something may be due (new events, a manual retry)."""
        self._wake.set()

    def forget(self, endpoint_id: str) -> None:
        """The endpoint changed (URL, secret, enabled, deleted): read it again before the next
        attempt that waited for a slot."""
        self._targets.pop(endpoint_id, None)

    def _events_committed(self, *_: Any) -> None:
        self._events_waiting = True
        self._wake.set()

    async def run(self) -> None:
        """Background task ``webhooks.dispatch``; its child ``webhooks.record`` writes the attempts."""
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(allow_private=self._allow_private),
            use_dns_cache=False,
            limit=self._concurrency,
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self._timeout)
        )
        recorder = asyncio.create_task(self._recorder.run(), name="webhooks.record")
        recorder.add_done_callback(lambda _: self._wake.set())
        try:
            while True:
                self._wake.clear()
                if recorder.done():  # it never returns: a crash stops the dispatcher loudly
                    recorder.result()
                    raise RuntimeError("webhooks.record stopped")
                try:
                    if self._listener is None or self._listener.is_closed():
                        await self._listen()  # again after the database restarted
                    if self._events_waiting or self._clock.monotonic() - self._fanned_out_at >= SAFETY_WAKE:
                        await self._fan_out()  # on a NOTIFY, and now and then in case one was missed
                    await self._start_due()
                    self._send_ready_batches()
                    await self._sleep_until_due()
                except DATABASE_DOWN as exc:  # events wait in the outbox; try again shortly
                    log.warning("webhooks.database_unavailable", error=repr(exc))
                    self._events_waiting = True
                    await asyncio.sleep(DATABASE_RETRY)
        finally:
            recorder.cancel()
            await asyncio.gather(recorder, return_exceptions=True)
            await self.close()

    async def close(self) -> None:
        """Cancel attempts in progress (they will be retried after a restart), write the attempts
        already finished, and release resources."""
        for task in list(self._attempts):
            task.cancel()
        await asyncio.gather(*self._attempts, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._recorder.close(), RECORDER_CLOSE_TIMEOUT)
        self._pending.clear()
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
            await listener.add_listener("relaygate_events", self._events_committed)
        except _LISTEN_ERRORS as exc:
            listener.terminate()
            log.warning("webhooks.listen_failed", error=repr(exc))
            return
        listener.add_termination_listener(self._events_committed)
        self._listener = listener
        self._events_waiting = True  # NOTIFYs sent while nobody listened are lost

    async def _sleep_until_due(self) -> None:
        timeout = SAFETY_WAKE
        if self._next_due is not None:
            timeout = min(timeout, max(0.0, (self._next_due - self._clock.now()).total_seconds()))
        if self._pending:
            soonest = min(p.deadline for p in self._pending.values())
            timeout = min(timeout, max(0.0, soonest - self._clock.monotonic()))
        if self._wake.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()

    async def _fan_out(self) -> None:
        self._events_waiting = False
        self._fanned_out_at = self._clock.monotonic()
        while await store.fan_out(self._pool, limit=FAN_OUT_BATCH) == FAN_OUT_BATCH:
            pass

    async def _start_due(self) -> None:
        """Take due deliveries (one statement) and start their requests."""
        free = self._concurrency * 2 - len(self._attempts)
        if free <= 0:  # a finishing attempt wakes the loop
            self._next_due = None
            return
        since = self._clock.monotonic() - self._took_at
        if free < self._concurrency and since < TAKE_INTERVAL:
            # many requests still wait or run: gather finished ones instead of a query per attempt
            self._next_due = self._clock.now() + timedelta(seconds=TAKE_INTERVAL - since)
            return
        self._took_at = self._clock.monotonic()
        rows, self._next_due = await store.take_due(self._pool, limit=free, exclude=list(self._in_progress))
        for r in rows:
            due = _Due(
                id=r.id,
                endpoint_id=r.endpoint_id,
                event_id=r.event_id,
                attempts=r.attempts,
                manual=r.manual,
                created_at=r.created_at,
                body=event_body(r.type, r.created_at, r.data_json),
            )
            target = _target(r)
            self._targets[due.endpoint_id] = (target, self._clock.monotonic())
            self._in_progress.add(due.id)
            if target.batch_max_events is None or not target.active:
                self._start([due], target)
                continue
            pending = self._pending.get(due.endpoint_id)
            if pending is None:
                wait = (target.batch_max_wait_ms or 0) / 1000
                pending = self._pending[due.endpoint_id] = _Pending(target, self._clock.monotonic() + wait)
            pending.target = target  # the freshest read of the endpoint
            pending.items.append(due)
            if len(pending.items) >= target.batch_max_events:
                del self._pending[due.endpoint_id]
                self._start(pending.items, target)

    def _send_ready_batches(self) -> None:
        """Start the batched requests whose first delivery waited long enough."""
        now = self._clock.monotonic()
        for endpoint_id, pending in list(self._pending.items()):
            if pending.deadline <= now:
                del self._pending[endpoint_id]
                self._start(pending.items, pending.target)

    def _start(self, group: list[_Due], target: _Target) -> None:
        task = asyncio.create_task(self._attempt(group, target), name=f"webhooks.attempt.{group[0].id}")
        self._attempts.add(task)
        task.add_done_callback(self._attempt_done)

    def _attempt_done(self, task: asyncio.Task[None]) -> None:
        self._attempts.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhooks.attempt_crashed", error=repr(task.exception()), exc_info=task.exception())
        self._wake.set()

    async def _attempt(self, group: list[_Due], target: _Target | None) -> None:
        """One request for ``group`` (one delivery, or a batch of one endpoint's), then its record."""
        endpoint_id = group[0].endpoint_id
        slots = self._endpoint_slots.setdefault(endpoint_id, asyncio.Semaphore(self._per_endpoint))
        try:
            waited = self._slots.locked() or slots.locked()
            async with self._slots, slots:
                if waited:  # the endpoint may have changed while this waited for a slot
                    target = await self._fresh_target(endpoint_id)
                started = self._clock.now()
                if target is None or not target.active:
                    result, duration_ms, final = Outcome("failed", error="endpoint_disabled"), 0, True
                else:
                    posted_at = self._clock.monotonic()
                    batched = target.batch_max_events is not None or len(group) > 1
                    result = await self._post(target.url, group, target.secrets, batched=batched)
                    duration_ms = int((self._clock.monotonic() - posted_at) * 1000)
                    final = False
            try:
                await self._record(group, result, started, duration_ms, final=final)
            except DATABASE_DOWN as exc:  # not recorded: the deliveries stay due and are attempted again
                log.warning("webhooks.record_failed", delivery_id=group[0].id, error=repr(exc))
                return
            if result.gone:
                await store.disable_gone(
                    self._pool, endpoint_id=endpoint_id, reason="endpoint answered 410 Gone"
                )
                log.warning("webhooks.endpoint_disabled", endpoint_id=endpoint_id, reason="410")
        finally:
            for due in group:
                self._in_progress.discard(due.id)

    async def _fresh_target(self, endpoint_id: str) -> _Target | None:
        """The endpoint as read less than ``TARGET_FRESH`` ago (by a round or another attempt), or
        as read now: at most one read per endpoint and second, however many attempts waited."""
        cached = self._targets.get(endpoint_id)
        if cached is not None and self._clock.monotonic() - cached[1] < TARGET_FRESH:
            return cached[0]
        row = await store.endpoint_target(self._pool, endpoint_id=endpoint_id)
        if row is None:
            self._targets.pop(endpoint_id, None)
            return None
        target = _target(row)
        self._targets[endpoint_id] = (target, self._clock.monotonic())
        return target

    async def _post(
        self, url: str, group: list[_Due], secrets_in_use: list[str], *, batched: bool
    ) -> Outcome:
        """One request: the event, or (``batched``: always for a batched endpoint, even with one
        event) the envelope of the group's events."""
        assert self._session is not None
        if not batched:
            webhook_id, body = group[0].event_id, group[0].body
        else:
            webhook_id = batch_webhook_id([d.event_id for d in group])
            events = sorted(group, key=lambda d: d.event_id)
            body = batch_body([(d.event_id, d.body) for d in events], max(d.created_at for d in group))
        headers = signature_headers(secrets_in_use, webhook_id, int(self._clock.time()), body)
        return await post(
            self._session, url, body, headers, allow_private=self._allow_private, now=self._clock.now
        )

    def _next_attempt(self, attempts_done: int, result: Outcome, jitter: float) -> datetime | None:
        if result.outcome != "failed" or result.gone or attempts_done >= len(self._schedule):
            return None
        delay = self._schedule[attempts_done] * jitter
        if result.retry_after is not None:
            delay = max(delay, result.retry_after)
        return self._clock.now() + timedelta(seconds=delay)

    async def _record(
        self, group: list[_Due], result: Outcome, started: datetime, duration_ms: int, *, final: bool
    ) -> None:
        """Write the attempt of every delivery in ``group`` (group-committed with other attempts)."""
        jitter = self._rng.uniform(0.9, 1.1)  # one draw per request: a batch stays together
        records: list[store.AttemptRecord] = []
        for due in group:
            attempts_done = due.attempts + 1
            next_at = None if final else self._next_attempt(attempts_done, result, jitter)
            if result.outcome == "succeeded":
                status = "succeeded"
            elif result.outcome == "blocked":
                status = "blocked"
            else:
                status = "pending" if next_at is not None else "failed"
            records.append(
                store.AttemptRecord(
                    delivery_id=due.id,
                    status=status,
                    next_attempt_at=next_at,
                    started_at=started,
                    trigger="manual" if due.manual else "scheduled",
                    duration_ms=duration_ms,
                    http_status=result.http_status,
                    error=result.error,
                    response_excerpt=result.excerpt,
                    outcome=result.outcome,
                )
            )
        for due in group:  # counted as the answer came, as the receiver saw it
            METRICS.webhook_attempt(result.outcome)
            if result.outcome == "succeeded" and not due.manual:
                # an event id not made by the gateway (an import, a test fixture) carries no time;
                # the metric must never keep the attempt from being recorded
                with contextlib.suppress(ValueError):
                    METRICS.event_to_webhook.observe(max(0.0, self._clock.time() - id_time(due.event_id)))
        await self._recorder.submit(records)
        for due, record in zip(group, records, strict=True):
            log.info(
                "webhooks.attempt",
                delivery_id=due.id,
                attempt=due.attempts + 1,
                outcome=result.outcome,
                http_status=result.http_status,
                error=result.error,
                status=record.status,
                batch=len(group),
            )
