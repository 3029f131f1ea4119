"""Admission of a send: the queue's state, the number's opt-out, and the sending caps per
account — messages per UTC day and per UTC calendar month, and messages to one number per
rolling hour (anti-abuse). A send over a cap is refused with ``rate_limited`` (429),
``Retry-After`` and ``details.reason`` naming the cap: ``daily_send_limit``,
``monthly_send_limit`` or ``per_recipient_hour_limit``. Every send path (SMS, OTP) admits its
message here after validation and before its commit.

Reading. A number's opt-out (which is never cached: an opt-out stored a moment ago by the API,
the CLI or an inbound STOP holds for the next send) and, for a number not counted in memory
yet, its last hour of messages come from one statement (:mod:`store.send_checks`), which
concurrent sends share (:class:`store.batched_read.BatchedRead`): one round trip per batch of
sends, not two.

Counting. The truth is the ``messages`` table: every accepted message is a row, whatever
became of it, and its ULID id carries the time it was accepted, so "this day's messages of the
account" is an id range of the index ``(account_id, id)`` and "this hour's messages to that
number" one of ``(account_id, to_number, id)``. Each process loads those counts the first time
it needs them in a period (so a restart loses nothing) and then counts in memory: admitting a
send is check-and-reserve with no ``await`` in between, so concurrent sends on the event loop
cannot both take the last unit. A send that is then not stored (refused, the database down, an
idempotent replay) gives its unit back (:meth:`Hold.release`). Several gateway processes each
count their own sends on top of what they loaded: together they may pass a cap by what the
others accepted since (see docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from gateway.access.accounts import Account
from gateway.errors import ApiError
from gateway.ids import id_floor, id_time
from gateway.recipients.directory import opted_out_error
from gateway.sending.queue_control import QueueControl
from store import messages as store
from store.batched_read import BatchedRead
from store.send_checks import NO_FACTS, NumberFacts, NumberKey, number_facts

__all__ = ["Hold", "SendCaps"]

HOUR = 3600.0
MAX_TRACKED_RECIPIENTS = 200_000
"""(account, number) windows kept in memory; beyond it the least recently added are dropped
(they are loaded again from the database when next needed)."""


def _day_start(now: float) -> float:
    return (now // 86400) * 86400


def _month_start(now: float) -> tuple[float, float]:
    """Start of this UTC calendar month and of the next one."""
    day = datetime.fromtimestamp(now, UTC)
    start = datetime(day.year, day.month, 1, tzinfo=UTC)
    following = datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=UTC)
    return start.timestamp(), following.timestamp()


@dataclass(slots=True)
class _AccountCount:
    """Messages the account accepted in the current UTC day and month."""

    day_start: float
    month_start: float
    day: int
    month: int


class _Window(msgspec.Struct, gc=False):
    """The times of the account's messages to one number in the last hour, oldest first. A
    tuple of floats, which the garbage collector leaves alone (a deque per number it would walk
    in every full collection)."""

    times: tuple[float, ...]


class Hold:
    """One send admitted against the caps; :meth:`release` if the message was not stored."""

    __slots__ = ("_at", "_count", "_released", "_window")

    def __init__(self, count: _AccountCount | None, window: _Window | None, at: float) -> None:
        self._count = count
        self._window = window
        self._at = at
        self._released = False

    def release(self) -> None:
        """Give the unit back (idempotent)."""
        if self._released:
            return
        self._released = True
        if self._count is not None:
            self._count.day -= 1
            self._count.month -= 1
        if self._window is not None:
            times = self._window.times
            if self._at in times:  # not yet left the window
                at = times.index(self._at)
                self._window.times = times[:at] + times[at + 1 :]


class SendCaps:
    """Admits sends against the queue's state, the opt-outs and the caps (see the module
    docstring)."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        queue: QueueControl,
        *,
        default_recipient_hour: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pool = pool
        self.queue = queue
        self._default_recipient_hour = default_recipient_hour
        self._clock = clock
        self._accounts: dict[str, _AccountCount] = {}
        self._recipients: dict[tuple[str, str], _Window] = {}
        self.reads: BatchedRead[NumberKey, NumberFacts] = BatchedRead(pool, number_facts, missing=NO_FACTS)
        """Opt-outs and the windows not in memory, read for concurrent sends with one statement."""
        self._loading: dict[str, asyncio.Event] = {}
        """Accounts whose day and month counts are being loaded."""

    def recipient_limit(self, account: Account) -> int | None:
        """Messages to one number per hour for ``account``; None: no such cap."""
        limit = account.per_recipient_hour_limit
        if limit is None:
            limit = self._default_recipient_hour or None
        return limit

    @asynccontextmanager
    async def admit(self, account: Account, to: str, *, opt_out: bool) -> AsyncIterator[Hold]:
        """Check the queue, the number's opt-out (when ``opt_out``: not for transactional
        messages) and the caps, and reserve one send to ``to`` for the body of the ``with``;
        raises ``queue_blocked``, ``validation_error`` (reason ``opted_out``) or
        ``rate_limited``. An exception in the body gives the unit back; so does
        ``hold.release()`` (e.g. an idempotent replay stored nothing)."""
        self.queue.check(account.id)
        hold = await self._reserve(account, to, opt_out)
        try:
            yield hold
        except BaseException:
            hold.release()
            raise

    async def _reserve(self, account: Account, to: str, opt_out: bool) -> Hold:
        capped = account.daily_send_limit is not None or account.monthly_send_limit is not None
        recipient_limit = self.recipient_limit(account)
        count = await self._account_count(account.id) if capped else None
        if not capped:
            self._accounts.pop(account.id, None)  # a cap set later loads a fresh count
        key = (account.id, to)
        window = self._recipients.get(key) if recipient_limit is not None else None
        wants_window = recipient_limit is not None and window is None
        if opt_out or wants_window:
            floor = id_floor("req", self._clock() - HOUR) if wants_window else None
            facts = await self.reads.get((account.id, to, floor))
            if opt_out and facts.opted_out:
                raise opted_out_error()
            if recipient_limit is not None:
                window = self._recipients.get(key)  # a concurrent send to it may have counted it
                if window is None:
                    window = _Window(tuple(id_time(message_id) for message_id in facts.recent))
                    self._remember(key, window)
        # From here to the end: no await, so the check and the reservation are one step.
        now = self._clock()
        if count is not None:
            self._check_account(account, count, now)
        if window is not None and recipient_limit is not None:
            times = window.times
            if times and times[0] <= now - HOUR:
                times = window.times = tuple(t for t in times if t > now - HOUR)
            if len(times) >= recipient_limit:
                raise ApiError.rate_limited(
                    times[0] + HOUR - now,
                    f"this account sent {recipient_limit} messages to this number in the last hour",
                    reason="per_recipient_hour_limit",
                    limit=recipient_limit,
                )
            window.times = (*times, now)
        if count is not None:
            count.day += 1
            count.month += 1
        return Hold(count, window, now)

    def _check_account(self, account: Account, count: _AccountCount, now: float) -> None:
        daily, monthly = account.daily_send_limit, account.monthly_send_limit
        if monthly is not None and count.month >= monthly:
            raise ApiError.rate_limited(
                _month_start(now)[1] - now,
                f"this account reached its monthly cap of {monthly} messages",
                reason="monthly_send_limit",
                limit=monthly,
            )
        if daily is not None and count.day >= daily:
            raise ApiError.rate_limited(
                count.day_start + 86400 - now,
                f"this account reached its daily cap of {daily} messages",
                reason="daily_send_limit",
                limit=daily,
            )

    async def _once(self, key: str) -> bool:
        """Wait while another task loads ``key``; True when the caller must load it itself."""
        event = self._loading.get(key)
        if event is None:
            self._loading[key] = asyncio.Event()
            return True
        await event.wait()
        return False

    def _loaded(self, key: str) -> None:
        event = self._loading.pop(key, None)
        if event is not None:
            event.set()

    async def _account_count(self, account_id: str) -> _AccountCount:
        """This day's and month's count for the account, loaded from the database when new."""
        while True:
            now = self._clock()
            day_start, month_start = _day_start(now), _month_start(now)[0]
            count = self._accounts.get(account_id)
            if count is not None and count.day_start == day_start and count.month_start == month_start:
                return count
            if await self._once(account_id):
                break
        try:
            day, month = await store.account_sends_since(
                self._pool,
                account_id=account_id,
                day_floor=id_floor("req", day_start),
                month_floor=id_floor("req", month_start),
            )
            count = _AccountCount(day_start, month_start, day, month)
            self._accounts[account_id] = count
            return count
        finally:
            self._loaded(account_id)

    def _remember(self, key: tuple[str, str], window: _Window) -> None:
        recipients = self._recipients
        if len(recipients) >= MAX_TRACKED_RECIPIENTS:
            horizon = self._clock() - HOUR
            for old in [k for k, w in recipients.items() if not w.times or w.times[-1] <= horizon]:
                del recipients[old]
            while len(recipients) >= MAX_TRACKED_RECIPIENTS:
                del recipients[next(iter(recipients))]
        recipients[key] = window
