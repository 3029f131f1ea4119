"""A batch is complete when none of its items is ``queued`` or ``dispatched`` any more; this is
where that is decided, in the transaction that finished the items (kept apart from
:mod:`.batches`, which builds on the send path, so that the pipeline can call it)."""

from __future__ import annotations

from gateway.events import BatchCompletedData, BatchCounts, event_row
from store import batches as store
from store.database import Conn, Db
from store.outbox import insert_events

__all__ = ["batch_counts", "complete_batches"]


async def batch_counts(db: Db, batch_id: str) -> BatchCounts:
    """Items of the batch per status."""
    by_status = await store.status_counts(db, batch_id=batch_id)
    return BatchCounts(**{f: by_status.get(f, 0) for f in BatchCounts.__struct_fields__})


async def complete_batches(conn: Conn, batch_ids: list[str]) -> list[str]:
    """In the caller's transaction: complete those of ``batch_ids`` with no unfinished item left
    and write their ``batch.completed`` events; returns the completed ids.

    The batch rows are locked first, so of two transactions that each finish some of a batch's
    last items, the second decides after the first committed and sees its changes: the batch
    completes exactly once, and never stays open with nothing left."""
    if not batch_ids:
        return []
    locked = await store.lock_open(conn, batch_ids=sorted(set(batch_ids)))
    if not locked:
        return []
    done = await store.complete(conn, batch_ids=locked)
    rows = []
    for r in done:
        data = BatchCompletedData(
            batch_id=r.id,
            list_id=r.list_id,
            total=r.total,
            counts=await batch_counts(conn, r.id),
            created_at=r.created_at,
            completed_at=r.completed_at,
        )
        rows.append(event_row(r.account_id, "batch.completed", data))
    if rows:
        await insert_events(conn, rows)
    return [r.id for r in done]
