"""The garbage collector and the gateway's memory: a queued message adds no object the
collector tracks (so a large backlog does not lengthen its full collections), and ``relaygate
serve``'s collector settings (:mod:`gateway.collector`)."""

from __future__ import annotations

import gc
import subprocess
import sys
from datetime import UTC, datetime

from gateway.sending.books import Unfinished
from scheduler import Priority, Work
from tests.unit.scheduler_fakes import make


def _tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


def test_queued_messages_add_no_tracked_objects() -> None:
    """Ten thousand messages queued in the scheduler (no relay is online), each with the
    pipeline's text record beside it, leave the collector's count of tracked objects where it
    was, give or take the few containers that hold them. A dataclass in their place adds
    several per message."""
    scheduler, clock = make()
    texts: dict[str, Unfinished] = {}
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    before = _tracked()
    for k in range(10_000):
        work = Work(f"req_{k}", "acc", Priority.NORMAL, clock() + 3600)
        scheduler.enqueue(work)
        texts[work.message_id] = Unfinished(work, f"+99890{k:07d}", "hello", None, expires)
    assert scheduler.queue_depth("acc") == 10_000
    assert _tracked() - before < 100


def test_serve_tunes_the_collector() -> None:
    """The youngest generation's threshold goes up and what exists is frozen."""
    code = (
        "import gc\n"
        "from gateway.collector import YOUNG_THRESHOLD, tune_collector\n"
        "tune_collector()\n"
        "assert gc.get_threshold()[0] == YOUNG_THRESHOLD, gc.get_threshold()\n"
        "assert gc.get_freeze_count() > 1000, gc.get_freeze_count()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
