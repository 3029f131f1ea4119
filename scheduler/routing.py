"""Routing decisions for one account: which message goes next, and to which relay.

These functions read an :class:`~scheduler.records.AccountRecord` and change
nothing; :class:`scheduler.core.Scheduler` applies what they decide.

Cost per decision, for an account with d relays and g distinct exclusion sets
(1 unless retried messages are waiting): O(d log d + (d + g) * d) plus the
amortised O(log n) of peeking at queue heads — never a scan of a queue.
"""

from __future__ import annotations

from collections.abc import Iterable

from .records import AccountRecord, MessageRecord, RelayRecord

__all__ = ["best_dispatch", "rate_window_opening", "relays_by_preference"]


def relays_by_preference(relays: Iterable[RelayRecord], now: float) -> list[RelayRecord]:
    """``relays`` ordered best first for the next unpinned message.

    Least loaded first; ties go to the relay with the fewest dispatches in the
    last minute, then to the one dispatched to least recently, so equal relays
    take turns. The device id makes the order total.
    """
    return sorted(
        relays,
        key=lambda relay: (
            relay.load,
            relay.rate.sent_last_minute(now),
            relay.last_dispatch_at,
            relay.device_id,
        ),
    )


def best_dispatch(account: AccountRecord, now: float) -> tuple[MessageRecord, RelayRecord] | None:
    """The account's first placeable message by ``(priority, seq)``, and its relay.

    Candidates are the head of each pinned queue whose relay can take a
    message now, and the head of each unpinned queue paired with the most
    preferred relay it does not exclude. None when nothing can go now.
    """
    able = [relay for relay in account.relays.values() if relay.can_take(now)]
    if not able:
        return None
    best: tuple[MessageRecord, RelayRecord] | None = None
    for relay in able:
        queue = account.pinned.get(relay.device_id)
        head = queue.peek() if queue is not None else None
        if head is not None and (best is None or head.sort_key < best[0].sort_key):
            best = (head, relay)
    if account.unpinned:
        ranked = relays_by_preference(able, now)
        for excluded, queue in account.unpinned.items():
            head = queue.peek()
            if head is None or (best is not None and head.sort_key > best[0].sort_key):
                continue
            relay_for_head = next((relay for relay in ranked if relay.device_id not in excluded), None)
            if relay_for_head is not None:
                best = (head, relay_for_head)
    return best


def rate_window_opening(account: AccountRecord, now: float) -> float | None:
    """When the first relay of the account that only waits for its rate window may send again.

    Only relays that are online, enabled and have room count: the others need
    an event (connect, enable, a freed slot), not time. None if there is none.
    """
    opens = [
        relay.rate.available_at(now, relay.limits)
        for relay in account.relays.values()
        if relay.usable and relay.has_room() and not relay.rate.allows(now, relay.limits)
    ]
    return min(opens) if opens else None
