"""Mutable bookkeeping of the scheduler: messages, their queues, relays, accounts.

Everything here is private to :mod:`scheduler`; the gateway sees only the
value types of :mod:`scheduler.model`. The structures are shaped so that every
decision of :class:`scheduler.core.Scheduler` is cheap:

* :class:`MessageQueue` is a binary heap ordered by ``(priority, seq)`` with
  lazy deletion: removing a queued message from the middle (cancelled,
  expired) only invalidates its entry, in O(1); stale entries are skipped when
  they reach the top and the heap is rebuilt when they outnumber live ones, so
  every operation stays O(log n) amortised and memory stays O(live).
* :class:`AccountRecord` keeps one queue per *pinned device* and one queue per
  *set of excluded devices* (almost always just the empty set; retried
  messages avoid the relays that failed them), each split by the SIM slot the
  message asks for (almost always "any"), so the head of every queue can be
  placed or refused by looking at the account's few relays only.
"""

from __future__ import annotations

import heapq
import itertools
import math
from enum import Enum

import msgspec

from .model import DeviceLimits, Work
from .rate_window import SendRateWindow

__all__ = [
    "AccountRecord",
    "MessageQueue",
    "MessageRecord",
    "MessageState",
    "RelayRecord",
]

COMPACT_MIN_ENTRIES = 64
"""Heaps smaller than this are never rebuilt; stale entries there cost nothing."""

_TICKETS = itertools.count(1)
"""Source of queue-entry numbers, unique across all queues."""


class MessageState(Enum):
    """Where a message the scheduler tracks is; finished messages are forgotten."""

    QUEUED = "queued"
    """Waiting for a relay."""
    ASSIGNED = "assigned"
    """Dispatched to a relay that has not acknowledged it yet."""
    ACKED = "acked"
    """The relay took it; waiting for its sent/failed report."""


_NO_RELAYS: frozenset[str] = frozenset()
"""The relays a message that never failed must avoid (one set shared by all of them)."""


class MessageRecord(msgspec.Struct, gc=False):
    """The scheduler's view of one message. Not tracked by the garbage collector: it refers to
    no object that refers back to it, and a queue of a million records would otherwise make
    every full collection walk all of them."""

    work: Work
    seq: int
    """Enqueue order; kept when the message returns to the queue."""
    state: MessageState
    attempts: int
    failures: int
    """Retryable failures so far; the message gives up at ``max_attempts`` of them."""
    device_id: str | None = None
    """Relay holding the message while ASSIGNED or ACKED."""
    excluded: frozenset[str] = _NO_RELAYS
    """Relays that failed this message and must not get it again."""
    ticket: int = 0
    """Number of this record's live :class:`MessageQueue` entry; 0 when not queued."""
    tracked: bool = True
    """False once the scheduler forgot the message (its expiry entry is stale)."""
    queued_since: float = 0.0
    """Clock time at which the scheduler started tracking it (a requeue keeps it)."""
    held_for: str | None = None
    """The relay that may already hold the message (its ack was lost), while the message
    waits for it (see :meth:`scheduler.core.Scheduler.hold_for`); None once dispatched."""
    held_until: float = 0.0
    """When that hold ends and the message may go to any relay."""
    unheld: Work | None = None
    """The message as accepted while a hold pins ``work`` to ``held_for``; None otherwise."""

    @property
    def sort_key(self) -> tuple[int, int]:
        """Queue order within an account: priority first, then enqueue order."""
        return (int(self.work.priority), self.seq)


UnpinnedKey = tuple[frozenset[str], int | None]
"""Queue key of unpinned messages: the relays they must avoid, and their SIM slot."""
PinnedKey = tuple[str, int | None]
"""Queue key of pinned messages: their relay, and their SIM slot."""

QueueEntry = tuple[int, int, int, MessageRecord]
"""``(priority, seq, ticket, record)``; tickets are unique, so records are never compared."""


class MessageQueue:
    """Heap of queued messages ordered by ``(priority, seq)``, with lazy deletion."""

    __slots__ = ("_entries", "live")

    def __init__(self) -> None:
        self._entries: list[QueueEntry] = []
        self.live = 0
        """Entries whose record is still queued here."""

    def push(self, record: MessageRecord) -> None:
        """Queue ``record`` at the place its priority and seq give it."""
        record.ticket = next(_TICKETS)
        heapq.heappush(self._entries, (int(record.work.priority), record.seq, record.ticket, record))
        self.live += 1

    def peek(self) -> MessageRecord | None:
        """The first live record, or None; drops stale entries on the way."""
        entries = self._entries
        while entries:
            _, _, ticket, record = entries[0]
            if record.ticket == ticket:
                return record
            heapq.heappop(entries)
        return None

    def pop(self) -> MessageRecord:
        """Remove and return the first live record; the queue must not be empty."""
        record = self.peek()
        if record is None:
            raise IndexError("pop from an empty MessageQueue")
        heapq.heappop(self._entries)
        record.ticket = 0
        self.live -= 1
        return record

    def discard(self, record: MessageRecord) -> None:
        """Remove ``record``, which must be queued here, wherever it is."""
        record.ticket = 0
        self.live -= 1
        if len(self._entries) > COMPACT_MIN_ENTRIES and len(self._entries) > 2 * self.live:
            self._entries = [entry for entry in self._entries if entry[3].ticket == entry[2]]
            heapq.heapify(self._entries)


class RelayRecord:
    """The scheduler's view of one relay phone."""

    __slots__ = (
        "account_id",
        "acked",
        "assigned",
        "device_id",
        "enabled",
        "last_dispatch_at",
        "last_sim",
        "limits",
        "online",
        "rate",
        "ready_slots",
        "sim_rates",
    )

    def __init__(self, device_id: str, account_id: str, enabled: bool, limits: DeviceLimits) -> None:
        self.device_id = device_id
        self.account_id = account_id
        self.enabled = enabled
        self.online = False
        self.limits = limits
        self.rate = SendRateWindow()
        self.assigned: set[str] = set()
        """Messages dispatched to the relay and not acknowledged yet."""
        self.acked: set[str] = set()
        """Messages the relay acknowledged and has not reported on yet."""
        self.last_dispatch_at = -math.inf
        self.ready_slots: frozenset[int] | None = None
        """SIM slots the relay reports ready; None until it reports any (no restriction)."""
        self.sim_rates: dict[int, SendRateWindow] = {}
        """Dispatches per SIM slot (those that went out on a known slot), for per-SIM limits."""
        self.last_sim: int | None = None
        """The slot of the last dispatch on a known SIM (where ``round_robin`` continues)."""

    @property
    def load(self) -> int:
        """Messages in flight on this relay."""
        return len(self.assigned) + len(self.acked)

    @property
    def usable(self) -> bool:
        """Online, enabled and with a ready SIM: the relay could send if it had room."""
        return self.online and self.enabled and (self.ready_slots is None or bool(self.ready_slots))

    def has_slot(self, sim_slot: int | None, now: float | None = None) -> bool:
        """Whether the relay can send on ``sim_slot`` (None: any ready SIM will do); with
        ``now``, also within that SIM's daily limit (for None: some ready SIM's)."""
        if sim_slot is None:
            if now is None or not self.limits.sim_per_day:
                return True
            choices = self.sim_choices(now)
            return choices is None or bool(choices)  # None: SIMs not reported, the phone picks
        if self.ready_slots is not None and sim_slot not in self.ready_slots:
            return False
        return now is None or self._sim_within_limit(sim_slot, now)

    def _sim_within_limit(self, slot: int, now: float) -> bool:
        for limited, per_day in self.limits.sim_per_day:
            if limited == slot:
                rate = self.sim_rates.get(slot)
                return rate is None or rate.sent_last_day(now) < per_day
        return True

    def sim_choices(self, now: float) -> list[int] | None:
        """The ready SIM slots within their daily limits, in slot order; None when the relay
        has not reported its SIMs (the phone chooses)."""
        if self.ready_slots is None:
            return None
        return sorted(slot for slot in self.ready_slots if self._sim_within_limit(slot, now))

    def choose_sim(self, sim_slot: int | None, now: float) -> int | None:
        """The SIM a dispatch at ``now`` goes out on (its own ``sim_slot``, else the policy's
        choice; None: the phone's default), counted against that SIM's limit."""
        chosen = sim_slot
        policy = self.limits.sim_policy
        if chosen is None and (policy != "default" or self.limits.sim_per_day):
            choices = self.sim_choices(now)
            if choices:
                if policy == "round_robin":
                    last = self.last_sim if self.last_sim is not None else -1
                    chosen = next((s for s in choices if s > last), choices[0])
                elif policy == "least_used":
                    chosen = min(choices, key=lambda s: (self._sim_sent(s, now), s))
                else:
                    chosen = choices[0]
        if chosen is not None:
            rate = self.sim_rates.get(chosen)
            if rate is None:
                rate = self.sim_rates[chosen] = SendRateWindow()
            rate.record(now)
            self.last_sim = chosen
        return chosen

    def _sim_sent(self, slot: int, now: float) -> int:
        rate = self.sim_rates.get(slot)
        return rate.sent_last_day(now) if rate is not None else 0

    def sim_usage(self, now: float) -> dict[int, int]:
        """Dispatches per SIM slot in the last 24 h (slots the gateway chose or was asked for)."""
        return {slot: rate.sent_last_day(now) for slot, rate in sorted(self.sim_rates.items())}

    def sim_opens_at(self, now: float) -> float | None:
        """When the first ready SIM at its daily limit may send again; None when none is."""
        if self.ready_slots is None:
            return None
        opens = [
            self.sim_rates[slot].day_opens_at(now, per_day)
            for slot, per_day in self.limits.sim_per_day
            if slot in self.ready_slots and slot in self.sim_rates and not self._sim_within_limit(slot, now)
        ]
        return min(opens) if opens else None

    def has_room(self) -> bool:
        """Whether one more message fits in the relay's in-flight window."""
        return self.load < self.limits.max_in_flight

    def can_take(self, now: float) -> bool:
        """Whether a dispatch to this relay at ``now`` is allowed (for a message naming no SIM
        slot: with per-SIM limits, some ready SIM must be within its limit)."""
        return (
            self.usable
            and self.has_room()
            and self.rate.allows(now, self.limits)
            and (not self.limits.sim_per_day or self.has_slot(None, now))
        )


class AccountRecord:
    """One customer account: its relays and its queued messages."""

    __slots__ = (
        "account_id",
        "by_age",
        "by_priority",
        "in_ready",
        "pinned",
        "queued",
        "relays",
        "unavailable_since",
        "unpinned",
        "usable_relays",
        "wake_at",
    )

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.relays: dict[str, RelayRecord] = {}
        self.usable_relays: set[str] = set()
        """Ids of the relays that are :attr:`RelayRecord.usable` (kept by the scheduler at every
        change of a relay's online, enabled or SIM state)."""
        self.unpinned: dict[UnpinnedKey, MessageQueue] = {}
        """Unpinned queued messages, by the set of relays they must avoid and their SIM slot."""
        self.pinned: dict[PinnedKey, MessageQueue] = {}
        """Pinned queued messages, by the device they are pinned to and their SIM slot."""
        self.queued = 0
        """Queued messages of the account, over all its queues."""
        self.by_priority = [0, 0, 0, 0]
        """Queued messages per priority (OTP, HIGH, NORMAL, LOW)."""
        self.by_age: list[tuple[int, int, MessageRecord]] = []
        """``(seq, ticket, record)`` heap of queued messages, oldest first, lazily deleted like
        :class:`MessageQueue` (an entry is live while the record holds its ticket)."""
        self.in_ready = False
        """Whether the account is in the scheduler's round-robin of ready accounts."""
        self.wake_at: float | None = None
        """When a rate window of one of its relays opens while its work waits."""
        self.unavailable_since: int | None = 0
        """Scheduler sequence number from which no relay of the account has been usable, or
        None while one is (0: never was). Compared with a message's ``seq`` to tell whether
        it ever saw a usable relay while it waited."""

    def push(self, record: MessageRecord) -> None:
        """Queue ``record`` in the queue its pin or exclusions (and SIM slot) select."""
        pinned, slot = record.work.pinned_device, record.work.sim_slot
        queue: MessageQueue | None
        if pinned is not None:
            queue = self.pinned.get((pinned, slot))
            if queue is None:
                queue = self.pinned[(pinned, slot)] = MessageQueue()
        else:
            queue = self.unpinned.get((record.excluded, slot))
            if queue is None:
                queue = self.unpinned[(record.excluded, slot)] = MessageQueue()
        queue.push(record)
        self.queued += 1
        self.by_priority[int(record.work.priority)] += 1
        heapq.heappush(self.by_age, (record.seq, record.ticket, record))
        if len(self.by_age) > COMPACT_MIN_ENTRIES and len(self.by_age) > 2 * self.queued:
            self.by_age = [entry for entry in self.by_age if entry[2].ticket == entry[1]]
            heapq.heapify(self.by_age)

    def take(self, record: MessageRecord) -> None:
        """Remove queued ``record`` from its queue, wherever in it it is."""
        pinned, slot = record.work.pinned_device, record.work.sim_slot
        if pinned is not None:
            key = (pinned, slot)
            self.pinned[key].discard(record)
            if not self.pinned[key].live:
                del self.pinned[key]
        else:
            unpinned_key = (record.excluded, slot)
            self.unpinned[unpinned_key].discard(record)
            if not self.unpinned[unpinned_key].live:
                del self.unpinned[unpinned_key]
        self.queued -= 1
        self.by_priority[int(record.work.priority)] -= 1

    def oldest(self) -> MessageRecord | None:
        """The queued message enqueued first (by seq), or None; drops stale entries on the way."""
        by_age = self.by_age
        while by_age:
            _, ticket, record = by_age[0]
            if record.ticket == ticket:
                return record
            heapq.heappop(by_age)
        return None

    def any_usable(self) -> bool:
        """Whether one of the account's relays is online, enabled and has a ready SIM."""
        return bool(self.usable_relays)

    def saw_usable_relay(self, record: MessageRecord) -> bool:
        """Whether a relay of the account was usable at some moment since ``record`` was queued."""
        return self.unavailable_since is None or self.unavailable_since > record.seq

    @property
    def idle(self) -> bool:
        """No relays and no queued work: the record can be dropped."""
        return not self.relays and not self.queued
