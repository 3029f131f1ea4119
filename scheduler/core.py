"""The scheduler: which queued SMS goes to which relay phone, and when.

:class:`Scheduler` is pure and in memory. It makes no awaits and does no I/O;
the gateway feeds it events (message enqueued, relay online/offline, ack,
result) and asks it for decisions (:meth:`Scheduler.next_dispatches`,
:meth:`Scheduler.expire_due`). Time comes only from the injected clock, so
tests drive it with a fake one. The gateway's tick should call
:meth:`~Scheduler.expire_due` before :meth:`~Scheduler.next_dispatches`, then
sleep until :meth:`~Scheduler.next_wakeup` or the next event.

Policy
    Within an account: strict priority (OTP, HIGH, NORMAL, LOW), FIFO by
    enqueue order within a priority; a message returning to the queue keeps
    its place. Between accounts: round robin, one dispatch per ready account
    per turn, and the turn order persists across calls, so a huge list of one
    account never starves another account. An unpinned message goes to the
    least-loaded relay of its account that is online, enabled, has room and is
    within its rate limits (ties: fewest dispatches in the last minute, then
    least recently used). A relay that reported its SIMs gets work only while
    one is ready, and a message asking for a SIM slot only goes to a relay
    with that slot ready. A pinned message waits for its relay without
    blocking the rest of the account. A retried message avoids the relays that
    failed it; a pinned one retries on its own relay, the only one it may use.
    A message fails for good at its ``max_attempts``-th retryable failure;
    hand-overs that end because a relay went away do not count.

Complexity (n queued messages of the account, d its relays, g its distinct
(exclusion set, SIM slot) queues — 1 unless retries are pending or messages ask
for a SIM slot, at most a handful)
    * enqueue, finished, retry, ack: O(log n) amortised (lazy heap deletion).
    * one dispatch decision: O(d log d + (d + g) * d + log n), i.e. O(log n)
      in queue length: only the heads of the account's queues are looked at.
    * accounts whose work cannot be placed are *parked*: they leave the
      round robin and return only on an event that could change the answer
      (new work, a relay online/enabled/freed or its SIMs ready, a rate window opening at a
      time computed when parking), so :meth:`Scheduler.next_dispatches` never
      rescans them.
    * expire_due: O(k log N) for k expiries among N tracked messages.
    * relay state changes (online, offline, enabled, SIMs): O(d), to keep
      track of whether the account has a usable relay (for ``no_device``).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable

import msgspec

from .model import DeviceLimits, Dispatch, Expiry, Work
from .records import AccountRecord, MessageRecord, MessageState, RelayRecord
from .routing import RelayRanking, best_dispatch, rate_window_opening

__all__ = ["Scheduler"]

EXPIRY_COMPACT_MIN = 1024
"""The expiry heap is rebuilt only when it holds this many more entries than live messages."""


class Scheduler:
    """Decides which queued message goes to which relay; see the module docstring."""

    def __init__(self, clock: Callable[[], float], *, max_attempts: int = 3) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        self._clock = clock
        self._max_attempts = max_attempts
        self._messages: dict[str, MessageRecord] = {}
        self._relays: dict[str, RelayRecord] = {}
        self._accounts: dict[str, AccountRecord] = {}
        self._ready: deque[AccountRecord] = deque()
        """Round robin of accounts that may have placeable work."""
        self._wakeups: list[tuple[float, int, AccountRecord]] = []
        """``(time, n, account)``: parked accounts to retry when a rate window opens."""
        self._expiries: list[tuple[float, int, MessageRecord]] = []
        """``(expires_at, seq, record)`` of every tracked message, plus stale entries."""
        self._seq = itertools.count(1)
        self._queued = 0
        self._in_flight = 0
        self._paused: set[str] = set()
        """Accounts whose queue is paused: their messages wait (and may expire), none is dispatched."""
        self._holds: list[tuple[float, int, MessageRecord]] = []
        """``(held_until, seq, record)`` of messages held for a relay (:meth:`hold_for`), plus
        stale entries."""

    # -- relays -----------------------------------------------------------

    def upsert_device(
        self, device_id: str, account_id: str, *, enabled: bool = True, limits: DeviceLimits = DeviceLimits()
    ) -> None:
        """Create a relay (offline) or update its enabled flag and limits.

        Online state and in-flight load are kept. Disabling a relay stops new
        dispatches; what is in flight on it stays. A relay cannot move to
        another account: remove it first (``ValueError`` otherwise).
        """
        relay = self._relays.get(device_id)
        if relay is None:
            relay = RelayRecord(device_id, account_id, enabled, limits)
            self._relays[device_id] = relay
            self._account(account_id).relays[device_id] = relay
        elif relay.account_id != account_id:
            raise ValueError(f"device {device_id!r} belongs to account {relay.account_id!r}")
        else:
            relay.enabled = enabled
            relay.limits = limits
        self._relay_changed(relay)
        self._wake(self._accounts[account_id])

    def set_online(self, device_id: str) -> None:
        """Mark a known relay connected; ``KeyError`` if it was never upserted."""
        relay = self._relays[device_id]
        relay.online = True
        self._relay_changed(relay)
        self._wake(self._accounts[relay.account_id])

    def set_sims(self, device_id: str, ready_slots: frozenset[int] | None) -> bool:
        """Record which SIM slots of a relay are ready to send (None: not reported, no
        restriction); a relay with an empty set gets no work. True if that changed anything
        (unknown relays: False)."""
        relay = self._relays.get(device_id)
        if relay is None or relay.ready_slots == ready_slots:
            return False
        relay.ready_slots = ready_slots
        account = self._accounts[relay.account_id]
        self._relay_changed(relay)
        self._wake(account)
        return True

    def set_offline(self, device_id: str) -> list[str]:
        """Mark a relay disconnected; return the unacknowledged messages requeued.

        Those keep their place in the queue and may go to any relay, this one
        included once it is back. Acknowledged messages stay bound to the relay,
        waiting for its report until they expire. Unknown relays: ``[]``.
        """
        relay = self._relays.get(device_id)
        if relay is None:
            return []
        relay.online = False
        account = self._accounts[relay.account_id]
        self._relay_changed(relay)
        requeued = sorted((self._messages[message_id] for message_id in relay.assigned), key=_by_seq)
        for record in requeued:
            self._release(record, relay)
            self._requeue(record, account)
        return [record.work.message_id for record in requeued]

    def remove_device(self, device_id: str) -> tuple[list[str], list[str]]:
        """Forget an unpaired relay.

        Returns ``(requeued, orphaned)``: unacknowledged messages went back to
        the queue as with :meth:`set_offline`; acknowledged ones are forgotten
        and the gateway must fail them (``device_removed``). Messages pinned to
        the relay stay queued until they expire.
        """
        relay = self._relays.get(device_id)
        if relay is None:
            return [], []
        requeued = self.set_offline(device_id)
        orphaned = sorted((self._messages[message_id] for message_id in relay.acked), key=_by_seq)
        for record in orphaned:
            self._forget(record)
        del self._relays[device_id]
        account = self._accounts[relay.account_id]
        del account.relays[device_id]
        self._drop_if_idle(account)
        return requeued, [record.work.message_id for record in orphaned]

    # -- work -------------------------------------------------------------

    def enqueue(self, work: Work) -> None:
        """Queue a new (or restored) message; ``ValueError`` if its id is already tracked."""
        record = self._track(work, MessageState.QUEUED)
        self._requeue(record, self._account(work.account_id))

    def restore_acked(self, work: Work, device_id: str) -> None:
        """After a restart: bind a message the relay had already acknowledged.

        It counts as load on the relay (``KeyError`` if unknown) and waits for
        its report or its expiry (``relay_timeout``); it is never dispatched.
        """
        relay = self._relays[device_id]
        if relay.account_id != work.account_id:
            raise ValueError(f"device {device_id!r} does not belong to account {work.account_id!r}")
        record = self._track(work, MessageState.ACKED)
        record.device_id = device_id
        relay.acked.add(work.message_id)
        self._in_flight += 1

    def next_dispatches(self, limit: int = 1000) -> list[Dispatch]:
        """Decide up to ``limit`` dispatches; each message becomes ASSIGNED to its relay."""
        now = self._clock()
        self._end_holds(now)
        self._fire_wakeups(now)
        dispatches: list[Dispatch] = []
        rankings: dict[str, RelayRanking] = {}  # per account, for this pass only
        ready = self._ready
        while ready and len(dispatches) < limit:
            account = ready.popleft()
            account.in_ready = False
            if not account.queued or account.account_id in self._paused:
                continue
            ranking = rankings.get(account.account_id)
            if ranking is None:
                ranking = rankings[account.account_id] = RelayRanking(account, now)
            choice = best_dispatch(account, ranking)
            if choice is None:
                self._park(account, now)
                continue
            record, relay = choice
            dispatches.append(self._assign(record, relay, account, now))
            ranking.assigned(relay)
            self._wake(account)
        return dispatches

    def acked(self, message_id: str, device_id: str) -> bool:
        """ASSIGNED to ``device_id`` becomes ACKED; anything else changes nothing and gives False."""
        record = self._messages.get(message_id)
        if record is None or record.state is not MessageState.ASSIGNED or record.device_id != device_id:
            return False
        relay = self._relays[device_id]
        relay.assigned.discard(message_id)
        relay.acked.add(message_id)
        record.state = MessageState.ACKED
        return True

    def finished(self, message_id: str) -> bool:
        """Forget a sent, delivered, finally failed or cancelled message; False if unknown."""
        record = self._messages.get(message_id)
        if record is None:
            return False
        self._forget(record)
        return True

    def retry(self, message_id: str) -> bool:
        """Requeue after a retryable failure on the message's relay.

        Each call counts one failed attempt. Returns True when the message
        waits for another attempt, avoiding the relay that failed it (a pinned
        message retries on its own relay). At the ``max_attempts``-th failure it
        is forgotten and False tells the gateway to fail it. Unknown: False.
        Already queued (a failure reported by a relay it is held for): counted,
        and True unless that was the last allowed failure.
        """
        record = self._messages.get(message_id)
        if record is None:
            return False
        record.failures += 1
        if record.failures >= self._max_attempts:
            self._forget(record)
            return False
        if record.state is MessageState.QUEUED:
            return True
        assert record.device_id is not None
        relay = self._relays[record.device_id]
        self._release(record, relay)
        if record.work.pinned_device is None:
            record.excluded = record.excluded | {relay.device_id}
        self._requeue(record, self._accounts[record.work.account_id])
        return True

    def hold_for(self, message_id: str, device_id: str, until: float) -> bool:
        """A relay left (or the gateway restarted) before its ack of the message was stored, so
        that relay may hold it: the message goes back to the queue for ``device_id`` only, and
        at ``until`` (the reclaim grace) to any relay — the relay de-duplicates by id, so
        nothing is sent twice. Counters are kept; the queue place is not. False (nothing
        changes) if unknown or pinned to another relay."""
        record = self._messages.get(message_id)
        if record is None:
            return False
        accepted = record.unheld or record.work
        if accepted.pinned_device not in (None, device_id):
            return False
        held = self._retrack(record, msgspec.structs.replace(accepted, pinned_device=device_id))
        held.unheld, held.held_for, held.held_until = accepted, device_id, until
        heapq.heappush(self._holds, (until, held.seq, held))
        return True

    def held_for(self, message_id: str) -> str | None:
        """The relay a queued message is held for (:meth:`hold_for`), or None."""
        record = self._messages.get(message_id)
        return None if record is None else record.held_for

    def undo_dispatch(self, message_id: str, device_id: str) -> bool:
        """A decision for ``device_id`` could not be recorded: the message goes back to the queue
        as accepted (a hold ends), its attempt not counted. False if it is not assigned there."""
        record = self._messages.get(message_id)
        if record is None or record.state is not MessageState.ASSIGNED or record.device_id != device_id:
            return False
        record.attempts -= 1
        self._retrack(record, record.unheld or record.work)
        return True

    def attempts(self, message_id: str) -> int:
        """Dispatches of a tracked message so far (0 if unknown): the one attempt counter."""
        record = self._messages.get(message_id)
        return 0 if record is None else record.attempts

    def failures(self, message_id: str) -> int:
        """Retryable failures of a tracked message so far (0 if unknown)."""
        record = self._messages.get(message_id)
        return 0 if record is None else record.failures

    def expire_due(self) -> list[Expiry]:
        """Forget and return every message whose ``expires_at`` has come."""
        now = self._clock()
        expired: list[Expiry] = []
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            record = heapq.heappop(expiries)[2]
            if not record.tracked:
                continue
            expired.append(self._expiry(record))
            self._forget(record)
        return expired

    def next_wakeup(self) -> float | None:
        """Earliest time at which time alone could produce a dispatch or an expiry.

        That is the next expiry, or the opening of a rate window a parked
        account waits for; the current time if accounts are ready now (an
        earlier call hit its ``limit``). None when nothing is pending.
        """
        while self._ready and not self._ready[0].queued:
            self._ready.popleft().in_ready = False
        if self._ready:
            return self._clock()
        wakeups = self._wakeups
        while wakeups and (wakeups[0][2].wake_at != wakeups[0][0] or not wakeups[0][2].queued):
            wake_at, _, account = heapq.heappop(wakeups)
            if account.wake_at == wake_at:
                account.wake_at = None  # nothing queued any more: nothing to wake for
        expiries = self._expiries
        while expiries and not expiries[0][2].tracked:
            heapq.heappop(expiries)
        holds = self._holds
        while holds and not _holding(holds[0]):
            heapq.heappop(holds)
        times = [heap[0][0] for heap in (wakeups, expiries, holds) if heap]
        return min(times) if times else None

    def set_paused(self, account_id: str, paused: bool) -> None:
        """Pause an account's queue (nothing of it is dispatched; messages still expire) or
        resume it."""
        if paused:
            self._paused.add(account_id)
        else:
            self._paused.discard(account_id)
            account = self._accounts.get(account_id)
            if account is not None:
                self._wake(account)

    # -- introspection ----------------------------------------------------

    def queue_depths(self, account_id: str | None = None) -> tuple[int, int, int, int]:
        """Queued messages per priority (OTP, HIGH, NORMAL, LOW) of one account or of all."""
        accounts = self._accounts.values() if account_id is None else [self._accounts.get(account_id)]
        totals = [0, 0, 0, 0]
        for account in accounts:
            if account is not None:
                for i, n in enumerate(account.by_priority):
                    totals[i] += n
        return totals[0], totals[1], totals[2], totals[3]

    def oldest_queued(self, account_id: str) -> tuple[str, float] | None:
        """``(message id, seconds queued)`` of the account's message queued first (enqueue
        order; time since the scheduler took it, so a restart starts it again), or None."""
        account = self._accounts.get(account_id)
        record = account.oldest() if account is not None else None
        if record is None:
            return None
        return record.work.message_id, max(0.0, self._clock() - record.queued_since)

    def device_load(self, device_id: str) -> int:
        """Messages in flight (assigned or acked) on a relay; 0 if unknown."""
        relay = self._relays.get(device_id)
        return relay.load if relay is not None else 0

    def queue_depth(self, account_id: str | None = None) -> int:
        """Queued messages of one account, or of all accounts."""
        if account_id is None:
            return self._queued
        account = self._accounts.get(account_id)
        return account.queued if account is not None else 0

    def sim_usage(self, device_id: str) -> dict[int, int]:
        """Dispatches per SIM slot of a relay in the last 24 h (those on a known slot)."""
        relay = self._relays.get(device_id)
        return relay.sim_usage(self._clock()) if relay is not None else {}

    def in_flight(self) -> int:
        """Messages assigned or acknowledged, over all relays."""
        return self._in_flight

    def location(self, message_id: str) -> tuple[str, str | None] | None:
        """``(state, device_id)`` of a tracked message — state is queued, assigned or acked."""
        record = self._messages.get(message_id)
        if record is None:
            return None
        return record.state.value, record.device_id

    # -- internals --------------------------------------------------------

    def _account(self, account_id: str) -> AccountRecord:
        account = self._accounts.get(account_id)
        if account is None:
            account = self._accounts[account_id] = AccountRecord(account_id)
        return account

    def _drop_if_idle(self, account: AccountRecord) -> None:
        if account.idle and self._accounts.get(account.account_id) is account:
            del self._accounts[account.account_id]

    def _track(self, work: Work, state: MessageState) -> MessageRecord:
        if work.message_id in self._messages:
            raise ValueError(f"message {work.message_id!r} is already scheduled")
        record = MessageRecord(work, next(self._seq), state, work.attempts, work.failures)
        record.queued_since = self._clock()
        self._messages[work.message_id] = record
        heapq.heappush(self._expiries, (work.expires_at, record.seq, record))
        return record

    def _forget(self, record: MessageRecord) -> None:
        """Stop tracking a message in any state, freeing its queue place or relay slot."""
        account = self._accounts[record.work.account_id]
        if record.state is MessageState.QUEUED:
            account.take(record)
            self._queued -= 1
        else:
            assert record.device_id is not None
            self._release(record, self._relays[record.device_id])
        record.tracked = False
        del self._messages[record.work.message_id]
        if len(self._expiries) > 2 * len(self._messages) + EXPIRY_COMPACT_MIN:
            self._expiries = [entry for entry in self._expiries if entry[2].tracked]
            heapq.heapify(self._expiries)
        self._drop_if_idle(account)

    def _release(self, record: MessageRecord, relay: RelayRecord) -> None:
        """Take an in-flight message off its relay; the freed slot may unpark the account."""
        relay.assigned.discard(record.work.message_id)
        relay.acked.discard(record.work.message_id)
        record.device_id = None
        self._in_flight -= 1
        self._wake(self._accounts[relay.account_id])

    def _requeue(self, record: MessageRecord, account: AccountRecord) -> None:
        record.state = MessageState.QUEUED
        account.push(record)
        self._queued += 1
        self._wake(account)

    def _assign(
        self, record: MessageRecord, relay: RelayRecord, account: AccountRecord, now: float
    ) -> Dispatch:
        account.take(record)
        self._queued -= 1
        self._in_flight += 1
        record.state = MessageState.ASSIGNED
        record.device_id = relay.device_id
        record.attempts += 1
        record.held_for = None
        relay.assigned.add(record.work.message_id)
        relay.rate.record(now)
        relay.last_dispatch_at = now
        sim_slot = relay.choose_sim(record.work.sim_slot, now)
        return Dispatch(record.work.message_id, relay.device_id, record.attempts, sim_slot)

    def _retrack(self, record: MessageRecord, work: Work) -> MessageRecord:
        """Forget ``record`` and queue ``work`` in its stead (at the back), counters kept."""
        attempts, failures = record.attempts, record.failures
        self._forget(record)
        self.enqueue(msgspec.structs.replace(work, attempts=attempts, failures=failures))
        return self._messages[work.message_id]

    def _end_holds(self, now: float) -> None:
        """Holds whose grace is over: a message still queued may go to any relay."""
        holds = self._holds
        while holds and holds[0][0] <= now:
            entry = heapq.heappop(holds)
            record = entry[2]
            if not _holding(entry):
                continue
            record.held_for = None
            if record.state is MessageState.QUEUED and record.unheld is not None:
                self._retrack(record, record.unheld)
            else:
                record.held_until = 0.0

    def _park(self, account: AccountRecord, now: float) -> None:
        """Leave the account out of the round robin until something could change its answer.

        Events wake it; a relay that only waits for its rate window gets a timed wakeup.
        """
        wake_at = rate_window_opening(account, now)
        if wake_at is None:
            return
        if account.wake_at is None or wake_at < account.wake_at:
            account.wake_at = wake_at
            heapq.heappush(self._wakeups, (wake_at, next(self._seq), account))

    def _fire_wakeups(self, now: float) -> None:
        wakeups = self._wakeups
        while wakeups and wakeups[0][0] <= now:
            wake_at, _, account = heapq.heappop(wakeups)
            if account.wake_at == wake_at:
                account.wake_at = None
                self._wake(account)

    def _wake(self, account: AccountRecord) -> None:
        """Put an account with queued work back in the round robin (at the end)."""
        if account.queued and not account.in_ready and account.account_id not in self._paused:
            account.in_ready = True
            self._ready.append(account)

    def _relay_changed(self, relay: RelayRecord) -> None:
        """Keep the account's usable relays in step with ``relay`` (O(1), not a scan of the
        account's relays: thousands of them come and go at once in a reconnect storm), and note
        when the last one went away (for ``no_device``)."""
        account = self._accounts[relay.account_id]
        if relay.usable:
            account.usable_relays.add(relay.device_id)
        else:
            account.usable_relays.discard(relay.device_id)
        if account.any_usable():
            account.unavailable_since = None
        elif account.unavailable_since is None:
            account.unavailable_since = next(self._seq)

    def _expiry(self, record: MessageRecord) -> Expiry:
        message_id, device_id = record.work.message_id, record.device_id
        if record.state is MessageState.ACKED:
            return Expiry(message_id, "relay_timeout", f"acknowledged by {device_id}, never reported")
        if record.state is MessageState.ASSIGNED:
            return Expiry(message_id, "expired", f"dispatched to {device_id}, never acknowledged")
        account = self._accounts[record.work.account_id]
        if record.attempts == 0 and not account.saw_usable_relay(record):
            return Expiry(
                message_id, "no_device", "no relay of the account was online and ready while it waited"
            )
        pinned = record.work.pinned_device
        if pinned is not None:
            relay = account.relays.get(pinned)
            if relay is None or not relay.usable or not relay.has_slot(record.work.sim_slot):
                return Expiry(message_id, "expired", f"pinned relay {pinned} was not available")
        if record.work.sim_slot is not None:
            detail = f"no relay with SIM slot {record.work.sim_slot} ready could take it in time"
            return Expiry(message_id, "expired", detail)
        return Expiry(message_id, "expired", "no relay could take it in time")


def _by_seq(record: MessageRecord) -> int:
    return record.seq


def _holding(entry: tuple[float, int, MessageRecord]) -> bool:
    """Whether a hold entry is still the live hold of its record."""
    until, _, record = entry
    return record.tracked and record.unheld is not None and record.held_until == until
