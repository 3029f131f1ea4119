"""The garbage collector's settings for the long-running gateway process (``relaygate serve``).

What the gateway keeps per queued message — the scheduler's record and its :class:`Work`, the
pipeline's :class:`~gateway.sending.books.Unfinished`, the per-number cap window — are msgspec
Structs with ``gc=False``, which the collector never tracks (tests/unit/test_collector.py holds
that), so a backlog of a million messages adds nothing to walk but the entries of a few large
dicts and heaps. What remains is tuned here:

* **The youngest generation's threshold is 50,000 allocations** (CPython's default is 700). A
  collection of it costs what survives, which is what a few hundred requests in flight hold,
  not what was allocated; with 700 it ran over a thousand times a second under load and moved
  those survivors on, and every 25 % of growth of the old generation that way started a full
  collection, which walks the large dicts and heaps: 50 to 70 ms, every half second at 5,000
  sends/s (bench/README.md, "2026-12-02, late").
* **What the start allocated is frozen** (:func:`gc.freeze`): the modules, the settings, the
  state loaded from PostgreSQL are never collected and stay out of every full collection.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "tune_collector"]

YOUNG_THRESHOLD = 50_000
"""Allocations (less deallocations) of tracked objects between collections of the youngest
generation."""


def tune_collector() -> None:
    """Freeze what exists now and raise the youngest generation's threshold (call once, when
    the gateway has started)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
