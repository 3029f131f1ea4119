"""S6 list fan-out: a 100k-number recipient list queued. Recipient lists do not exist yet, so
this scenario reports a skip (no numbers are made up)."""

from __future__ import annotations

from bench.context import Bench
from bench.scenarios import Outcome

__all__ = ["run"]


async def run(bench: Bench) -> Outcome:
    """Skip until ``POST /v1/recipient-lists/queue`` lands."""
    if bench.api is not None:
        status, _ = await bench.api.call("POST", "/v1/recipient-lists/queue", {})
        if status not in (404, 405):
            return Outcome(
                "skipped", reason="recipient lists exist now, but this scenario is not written yet"
            )
    return Outcome("skipped", reason="recipient lists not implemented")
