"""The running gateway's clock: one object, owned by the runtime, handed down through
:class:`gateway.services.Services` and the constructors to whatever reads time.

Two kinds of time, never mixed: :meth:`Clock.monotonic` for durations, TTLs, rate limits and
deadlines inside the process; :meth:`Clock.time` / :meth:`Clock.now` for wall time that is
stored, sent or compared with stored times. Tests give the gateway a clock they can move
(``tests.harness.MovableClock``) instead of patching modules or private attributes.
PostgreSQL's own ``now()`` is not this clock: SQL that compares with ``now()`` follows the
database server's time.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["SYSTEM_CLOCK", "Clock"]


class Clock:
    """The system's time. Subclass (tests) to move it; every method reads the same instant."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (:func:`time.monotonic`)."""
        return time.monotonic()

    def time(self) -> float:
        """Wall time in seconds since the epoch (:func:`time.time`)."""
        return time.time()

    def now(self) -> datetime:
        """Wall time, timezone-aware UTC."""
        return datetime.fromtimestamp(self.time(), UTC)


SYSTEM_CLOCK = Clock()
"""The clock of a gateway nobody gave another one."""
