"""Durable message state changes, group-committed, with their outbox events in the same
transaction.

A :class:`Transition` is one step of a message's life (dispatched, acked, requeued, sent,
delivered, failed, cancelled). :func:`write_transitions` applies a batch: the SQL only moves a status
forward and checks that a relay reports only on messages it holds, and it returns, per item,
whether anything changed — so duplicate and late reports are harmless. ``message.sent``,
``message.delivered``, ``message.failed`` and ``message.cancelled`` events are written to the outbox in the same
transaction as the change that caused them.

A ``sent``/``delivered`` report from the message's last relay that arrives after the message
failed (e.g. ``relay_timeout``) does not move the status; it is recorded as the message's *late
report* (``late_report_status``/``late_report_at`` on the message and its last attempt) and
emits ``message.late_report``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from gateway.events import LateReportData, MessageEventData, event_row
from gateway.metrics import METRICS
from store import transitions as store
from store.outbox import EventRow, insert_events

__all__ = ["LATE_REPORT_EVENT", "Kind", "Transition", "write_transitions"]

Kind = Literal["dispatched", "acked", "requeued", "sent", "delivered", "failed", "cancelled"]
_ORDER: tuple[Kind, ...] = ("dispatched", "acked", "requeued", "sent", "delivered", "failed", "cancelled")
_EVENT_KINDS = {
    "sent": "message.sent",
    "delivered": "message.delivered",
    "failed": "message.failed",
    "cancelled": "message.cancelled",
}
LATE_REPORT_EVENT = "message.late_report"
"""Outbox event for a sent/delivered report that arrived after the message had failed."""


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change of one message. ``device_id`` is the relay involved (None for the
    gateway's own decisions such as expiry)."""

    kind: Kind
    message_id: str
    device_id: str | None
    at: datetime
    """When the gateway learned of it."""
    attempt: int = 0
    """For ``dispatched``: the attempt it starts; for ``cancelled`` by the gateway: the attempts
    the gateway knows of (the SQL cancels only if no dispatch happened since)."""
    reason: str | None = None
    """Why it failed (``failed``, ``requeued``) or was cancelled (``cancelled``)."""
    outcome: str | None = None
    reported_at: datetime | None = None
    """The relay's own time of a reported sent/delivered/failed (the report's ``at``); it is
    stored instead of ``at`` when plausible (see ``store.transitions._REPORTED_AT``)."""
    detail: str | None = None
    """For ``failed``: the human-readable ``failure_reason_detail``."""


async def write_transitions(conn: Any, items: Sequence[Transition]) -> list[bool]:
    """Apply ``items`` in one transaction (the caller's); True for each that changed something.

    Items of the same message keep their order: the batch is split into generations in which a
    message appears at most once, and each generation is applied kind by kind.
    """
    generations: list[list[int]] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        g = seen.get(item.message_id, 0)
        seen[item.message_id] = g + 1
        if g == len(generations):
            generations.append([])
        generations[g].append(index)

    changed = [False] * len(items)
    events: list[tuple[str, str]] = []
    for generation in generations:
        for kind in _ORDER:
            idx = [i for i in generation if items[i].kind == kind]
            if not idx:
                continue
            group = [items[i] for i in idx]
            ids = set(await _apply(conn, kind, group))
            late: set[str] = set()
            if kind in ("sent", "delivered"):
                late = set(await _apply_late(conn, kind, [t for t in group if t.message_id not in ids]))
            for i in idx:
                if items[i].message_id in ids:
                    changed[i] = True
                    if kind in _EVENT_KINDS:
                        events.append((items[i].message_id, _EVENT_KINDS[kind]))
                elif items[i].message_id in late:
                    changed[i] = True
                    events.append((items[i].message_id, LATE_REPORT_EVENT))
    if events:
        await _write_events(conn, events)
    return changed


async def _apply(conn: Any, kind: Kind, group: list[Transition]) -> list[str]:
    ids = [t.message_id for t in group]
    devices = [t.device_id for t in group]
    ats = [t.at for t in group]
    if kind == "dispatched":
        legs = await store.mark_dispatched(
            conn, ids=ids, devices=devices, attempts=[t.attempt for t in group], ats=ats
        )
        METRICS.accept_to_dispatch.observe_all(leg for _, leg in legs)
        return [message_id for message_id, _ in legs]
    if kind == "acked":
        legs = await store.mark_acked(conn, ids=ids, devices=devices, ats=ats)
        METRICS.dispatch_to_ack.observe_all(leg for _, leg in legs)
        return [message_id for message_id, _ in legs]
    if kind == "requeued":
        return await store.mark_requeued(
            conn,
            ids=ids,
            devices=devices,
            ats=ats,
            outcomes=[t.outcome for t in group],
            reasons=[t.reason for t in group],
        )
    if kind == "cancelled":
        cancelled = await store.mark_cancelled(
            conn,
            ids=ids,
            devices=devices,
            ats=ats,
            attempts=[t.attempt for t in group],
            reasons=[t.reason for t in group],
        )
        cancelled_ids = [c.id for c in cancelled]
        if cancelled_ids:
            await store.finish_attempts(
                conn,
                ids=cancelled_ids,
                outcome="cancelled",
                reasons=[None] * len(cancelled_ids),
                ats=[c.at for c in cancelled],
            )
        return cancelled_ids
    reported = [t.reported_at for t in group]
    stored: Sequence[store.Stored | store.ReportStored]
    if kind == "sent":
        sent = await store.mark_sent(conn, ids=ids, devices=devices, ats=ats, reported=reported)
        METRICS.ack_to_sent.observe_all(r.leg for r in sent)
        stored = sent
    elif kind == "delivered":
        delivered = await store.mark_delivered(conn, ids=ids, devices=devices, ats=ats, reported=reported)
        METRICS.sent_to_delivered.observe_all(r.leg for r in delivered)
        stored = delivered
    else:
        stored = await store.mark_failed(
            conn,
            ids=ids,
            devices=devices,
            ats=ats,
            reported=reported,
            reasons=[t.reason for t in group],
            details=[t.detail for t in group],
        )
    stored_at = {r.id: r.at for r in stored}  # the time each change was stored with
    done = [t for t in group if t.message_id in stored_at]
    if done:
        await store.finish_attempts(
            conn,
            ids=[t.message_id for t in done],
            outcome=kind,
            reasons=[t.reason for t in done],
            ats=[stored_at[t.message_id] for t in done],
        )
    return list(stored_at)


async def _apply_late(conn: Any, kind: Kind, group: list[Transition]) -> list[str]:
    """Reports that changed nothing: keep those that came after the message had failed."""
    if not group:
        return []
    return await store.record_late_reports(
        conn,
        ids=[t.message_id for t in group],
        devices=[t.device_id for t in group],
        status=kind,
        ats=[t.at for t in group],
    )


FinalStatus = Literal["sent", "delivered", "failed", "cancelled"]
MessageKind = Literal["sms", "otp", "list"]
LateStatus = Literal["sent", "delivered"]

_STATUS_OF: dict[str, FinalStatus] = {
    "message.sent": "sent",
    "message.delivered": "delivered",
    "message.failed": "failed",
    "message.cancelled": "cancelled",
}


async def _write_events(conn: Any, events: list[tuple[str, str]]) -> None:
    by_id = {r.id: r for r in await store.event_data(conn, list({m for m, _ in events}))}
    rows: list[EventRow] = []
    for message_id, event_type in events:
        r = by_id[message_id]
        late = event_type == LATE_REPORT_EVENT
        failed = late or event_type == "message.failed"
        data = MessageEventData(
            request_id=message_id,
            status=cast(FinalStatus, r.status) if late else _STATUS_OF[event_type],
            to=r.to_number,
            device_id=r.device_id,
            device_name=r.device_name,
            attempts=r.attempts,
            failure_reason=r.failure_reason if failed else None,
            failure_reason_detail=r.failure_reason_detail if failed else None,
            metadata=r.metadata or None,
            kind=cast(MessageKind, r.kind),
            cancel_reason=r.cancel_reason if event_type == "message.cancelled" else None,
            late_report=LateReportData(
                status=cast(LateStatus, r.late_report_status),
                at=cast(datetime, r.late_report_at),
                device_id=cast(str, r.device_id),
            )
            if late and r.late_report_status is not None
            else None,
        )
        rows.append(event_row(r.account_id, event_type, data))
    await insert_events(conn, rows)
