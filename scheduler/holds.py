"""Messages held until a time: scheduled sends (``send_at``) and quiet hours.

:class:`HoldQueue` is a min-heap of ``(release_at, message_id)`` with lazy deletion: the
gateway holds a message, drops it when it is cancelled, and asks which are due at the clock's
time. Pure and in memory like the rest of :mod:`scheduler`; time comes from the injected clock.
Each operation is O(log n) amortised.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

__all__ = ["HoldQueue"]


class HoldQueue:
    """Held message ids by release time."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, str]] = []
        self._release_at: dict[str, float] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._release_at)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._release_at

    def hold(self, message_id: str, release_at: float) -> None:
        """Hold ``message_id`` until ``release_at`` (holding it again moves its time)."""
        self._release_at[message_id] = release_at
        heapq.heappush(self._heap, (release_at, next(self._seq), message_id))

    def drop(self, message_id: str) -> bool:
        """Forget a held message (cancelled); False if it was not held."""
        return self._release_at.pop(message_id, None) is not None

    def due(self, limit: int = 1000) -> list[str]:
        """Forget and return up to ``limit`` held messages whose time has come, earliest first."""
        now = self._clock()
        out: list[str] = []
        heap = self._heap
        while heap and len(out) < limit and heap[0][0] <= now:
            release_at, _, message_id = heapq.heappop(heap)
            if self._release_at.get(message_id) == release_at:
                del self._release_at[message_id]
                out.append(message_id)
        return out

    def next_release(self) -> float | None:
        """The earliest release time held, or None."""
        heap = self._heap
        while heap and self._release_at.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None
