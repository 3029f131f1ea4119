"""Routing decisions for one account: which message goes next, and to which relay.

These functions read an :class:`~scheduler.records.AccountRecord` and change
nothing; :class:`scheduler.core.Scheduler` applies what they decide.

Within one scheduling pass time stands still and relays change only through
the pass's own assignments, so the relays that can take a message are ranked
once per account per pass (:class:`RelayRanking`, a heap with lazy
invalidation) and re-ranked one at a time as they are assigned work.

Cost per decision, for an account with d relays and p pinned queues:
O(log d + p) plus the amortised O(log n) of peeking at queue heads; the first
decision of a pass for an account adds O(u), u the relays usable now (online, enabled, a SIM
ready: the scheduler keeps that set, so thousands of offline relays cost nothing). Messages that must avoid relays
(after a retryable failure) or that ask for one SIM slot add O(d log d) while
they wait. Never a scan of a queue.
"""

from __future__ import annotations

import heapq

from .model import Priority
from .records import AccountRecord, MessageRecord, RelayRecord

__all__ = ["RelayRanking", "best_dispatch", "rate_window_opening"]

Preference = tuple[int, int, float, str]


def _preference(relay: RelayRecord, now: float) -> Preference:
    """Least loaded first; ties go to the fewest dispatches in the last minute, then to the
    relay dispatched to least recently (so equal relays take turns); the id makes it total."""
    return (relay.load, relay.rate.sent_last_minute(now), relay.last_dispatch_at, relay.device_id)


class RelayRanking:
    """The account's relays that can take a message at ``now``, best first, for one pass."""

    __slots__ = ("_current", "_heap", "_now", "_relays")

    def __init__(self, account: AccountRecord, now: float) -> None:
        self._now = now
        self._relays = account.relays
        relays = account.relays
        self._current: dict[str, Preference] = {
            device_id: _preference(relay, now)
            for device_id in account.usable_relays
            if (relay := relays[device_id]).can_take(now)
        }
        self._heap = list(self._current.values())
        heapq.heapify(self._heap)

    def best(self, excluded: frozenset[str], sim_slot: int | None = None) -> RelayRecord | None:
        """The most preferred relay not in ``excluded`` that can send on ``sim_slot``, or None."""
        heap, current = self._heap, self._current
        while heap and current.get(heap[0][3]) != heap[0]:
            heapq.heappop(heap)  # stale: the relay was re-ranked or can no longer take work
        if not heap:
            return None
        if not excluded and sim_slot is None:
            return self._relays[heap[0][3]]
        for key in sorted(current.values()):
            relay = self._relays[key[3]]
            if key[3] not in excluded and relay.has_slot(sim_slot, self._now):
                return relay
        return None

    @property
    def now(self) -> float:
        """The time of this pass."""
        return self._now

    def can_take(self, device_id: str) -> bool:
        """Whether the relay is among those that can take a message now."""
        return device_id in self._current

    def assigned(self, relay: RelayRecord) -> None:
        """``relay`` was just given a message: rank it again (or drop it when it is full)."""
        if relay.can_take(self._now):
            key = _preference(relay, self._now)
            self._current[relay.device_id] = key
            heapq.heappush(self._heap, key)
        else:
            self._current.pop(relay.device_id, None)


def fits(record: MessageRecord, relay: RelayRecord) -> bool:
    """List (``LOW``) work leaves a fifth of a relay's in-flight window (rounded down) to the
    priorities above it, so an OTP or a transactional send finds a free slot while a big list
    drains. Exact on the ranking's best relay: it is the least loaded one."""
    if record.work.priority < Priority.LOW:
        return True
    limit = relay.limits.max_in_flight
    return relay.load < limit - limit // 5


def best_dispatch(account: AccountRecord, ranking: RelayRanking) -> tuple[MessageRecord, RelayRecord] | None:
    """The account's first placeable message by ``(priority, seq)``, and its relay.

    Candidates are the head of each pinned queue whose relay can take a
    message now (on the queue's SIM slot), and the head of each unpinned queue
    paired with the most preferred relay it does not exclude that has its SIM
    slot ready (and, for list work, room beyond the reserve: :func:`fits`). None when nothing
    can go now.
    """
    best: tuple[MessageRecord, RelayRecord] | None = None
    for (device_id, sim_slot), queue in account.pinned.items():
        head = queue.peek()
        if head is None or not ranking.can_take(device_id):
            continue
        if not account.relays[device_id].has_slot(sim_slot, ranking.now) or not fits(
            head, account.relays[device_id]
        ):
            continue
        if best is None or head.sort_key < best[0].sort_key:
            best = (head, account.relays[device_id])
    for (excluded, sim_slot), queue in account.unpinned.items():
        head = queue.peek()
        if head is None or (best is not None and head.sort_key > best[0].sort_key):
            continue
        relay = ranking.best(excluded, sim_slot)
        if relay is not None and fits(head, relay):
            best = (head, relay)
    return best


def rate_window_opening(account: AccountRecord, now: float) -> float | None:
    """When the first relay of the account that only waits for its rate window may send again.

    Only relays that are online, enabled and have room count: the others need
    an event (connect, enable, a freed slot), not time. A SIM at its daily limit
    counts too. None if there is none.
    """
    usable = [account.relays[device_id] for device_id in account.usable_relays]
    opens = [
        relay.rate.available_at(now, relay.limits)
        for relay in usable
        if relay.has_room() and not relay.rate.allows(now, relay.limits)
    ]
    # A SIM at its daily limit opens again by time too (work may wait for that very SIM).
    for relay in usable:
        if relay.limits.sim_per_day and relay.has_room():
            sim_opens = relay.sim_opens_at(now)
            if sim_opens is not None:
                opens.append(sim_opens)
    return min(opens) if opens else None
