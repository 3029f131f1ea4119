"""List sends: one call queues a whole recipient list, each number its own message.

:func:`queue_list` does it in one transaction, so a list is queued whole or not at all (a crash
in the middle leaves nothing): a batch row, then one ``INSERT … SELECT`` that renders the text
for every member (``{name}``, ``{phone}`` and the member's metadata keys) and computes each
message's encoding and segments in SQL — no per-number round trip and no per-number Python
except the destination-policy check (:func:`gateway.recipients.numbers.refused_numbers`).
Members that opted out, or whose number the account's policy refuses, are skipped and named in
the answer. Items are messages of kind ``list`` with ``batch_id`` set; the dispatch loop feeds
them to the scheduler a chunk at a time (:meth:`gateway.sending.pipeline.Pipeline.batch_queued`),
so a big list holds neither all its Work records nor all its texts in memory.

A batch is complete when none of its items is ``queued`` or ``dispatched`` any more (each is
``sent``, ``delivered``, ``failed`` or ``cancelled``). :func:`complete_batches` runs in the
transaction that finishes items and writes ``batch.completed`` exactly once, with
``completed_at``; the pipeline runs it again for every open batch at start-up.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec

from gateway.access.accounts import Account
from gateway.errors import ApiError
from gateway.events import BatchCounts
from gateway.ids import new_id
from gateway.recipients.completion import batch_counts, complete_batches
from gateway.recipients.numbers import refused_numbers
from gateway.sending.messages import is_blank
from gateway.sending.sms_text import GSM_BASIC, GSM_EXTENDED, analyse
from scheduler import Priority
from store import batches as store
from store import lists as lists_store
from store.database import Conn, Db

__all__ = [
    "MAX_SKIPPED_SHOWN",
    "Batch",
    "BatchQueued",
    "QueueSpec",
    "Skipped",
    "batch_counts",
    "complete_batches",
    "get_batch",
    "parse_template",
    "queue_list",
]

MAX_SKIPPED_SHOWN = 1000
"""Skipped members named in the answer; ``skipped_total`` counts all of them."""
POLICY_CHUNK = 5000
"""Numbers checked against the policy between two yields to the event loop (~20 ms)."""

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]{0,39})\}")
SkipReason = Literal["opted_out", "invalid_number", "duplicate"]


def _char_class(chars: frozenset[str]) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in sorted(chars))


GSM_TEXT_PATTERN = f"^[{_char_class(GSM_BASIC | GSM_EXTENDED)}]*$"
"""A PostgreSQL regular expression matching texts that are GSM-7 (sms_text's alphabet)."""
EXTENDED_CHARACTERS = "".join(sorted(GSM_EXTENDED))
"""The characters of the GSM extension table (two septets each)."""


def parse_template(text: str) -> tuple[list[str], list[str]]:
    """``(literals, keys)``: the text split at its ``{placeholder}`` s, ``len(literals) ==
    len(keys)``, the last key ``''``. ``{{`` and ``}}`` stand for a literal brace; any other
    brace is text."""
    literals, keys, current = [], [], []
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        current.append(text[position : match.start()])
        position = match.end()
        token = match.group(0)
        if match.group(1) is None:
            current.append(token[0])
            continue
        literals.append("".join(current))
        keys.append(match.group(1))
        current = []
    current.append(text[position:])
    literals.append("".join(current))
    keys.append("")
    return literals, keys


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """What a caller asks to queue (already shape-checked by the HTTP layer)."""

    list_id: str
    text: str
    priority: Priority
    ttl_seconds: int
    device_id: str | None
    metadata: dict[str, Any] | None
    send_at: datetime | None = None
    """When the items may go (validated, in the future): they are ``scheduled`` until then."""


class Skipped(msgspec.Struct, kw_only=True):
    """A member that was not queued, and why."""

    recipient_id: str
    phone: str
    reason: SkipReason
    """``opted_out``; ``invalid_number`` (the account's number policy refuses it, or it is no
    longer a valid number); ``duplicate`` (a number already queued in this batch: cannot occur
    while the directory holds each number once)."""


class BatchQueued(msgspec.Struct, kw_only=True):
    """The answer of ``POST /v1/recipient-lists/queue``, given after every item is committed."""

    ok: bool = True
    batch_id: str
    status: Literal["queued", "scheduled"] = "queued"
    """``scheduled`` when the request named a ``send_at`` in the future."""
    queued: int
    skipped: list[Skipped]
    """At most ``MAX_SKIPPED_SHOWN`` (1,000), in recipient id order."""
    skipped_total: int
    queued_at: datetime
    send_at: datetime | None = None
    """When the items may go, if the request scheduled them."""


class Batch(msgspec.Struct, kw_only=True):
    """A batch as ``GET /v1/batches/{id}`` shows it."""

    id: str
    list_id: str
    total: int
    """Items queued (skipped members are not items)."""
    skipped: int
    counts: BatchCounts
    created_at: datetime
    completed_at: datetime | None
    """When the last item became final; ``batch.completed`` fired then."""
    cancelled_at: datetime | None


def _invalid(field: str, problem: str, **details: Any) -> ApiError:
    return ApiError("validation_error", "request body is invalid", {"fields": {field: problem}, **details})


async def _refused(db: Db, account: Account, list_id: str) -> list[str]:
    """The list's numbers the account's destination policy refuses (checked in chunks, letting
    other requests in between)."""
    phones = await store.list_phones(db, account_id=account.id, list_id=list_id)
    refused: list[str] = []
    for start in range(0, len(phones), POLICY_CHUNK):
        chunk = phones[start : start + POLICY_CHUNK]
        refused += refused_numbers(chunk, account.allowed_number_types, account.allowed_countries)
        await asyncio.sleep(0)
    return refused


async def queue_list(
    conn: Conn,
    account: Account,
    spec: QueueSpec,
    *,
    now: datetime,
    policy_db: Db,
    id_prefix: str | None = None,
) -> BatchQueued:
    """Queue every eligible member of the list in the caller's open transaction; the caller
    commits, then tells the pipeline (``batch_queued``). ``policy_db`` (the pool) lends a second
    connection for reading the numbers to check. ``not_found`` for a list that is not the
    account's; ``validation_error`` for a blank text or unknown placeholders. ``now`` is the
    gateway clock's (what the items are stamped with)."""
    literals, keys = parse_template(spec.text)
    if is_blank("".join(literals)):
        raise _invalid("message", "must have text besides placeholders")
    if not await lists_store.lock_list(conn, account_id=account.id, list_id=spec.list_id):
        raise ApiError("not_found", "no such list", {"list_id": spec.list_id[:64]})
    wanted = sorted({k for k in keys if k and k not in ("name", "phone")})
    if wanted:
        unknown = await store.unknown_keys(conn, account_id=account.id, list_id=spec.list_id, keys=wanted)
        if unknown:
            raise _invalid(
                "message",
                "unknown placeholders: " + ", ".join("{" + k + "}" for k in unknown),
                reason="unknown_placeholders",
                placeholders=unknown,
            )
    batch_id = new_id("bat")
    constant = analyse(literals[0]) if len(literals) == 1 else None
    start = spec.send_at if spec.send_at is not None and spec.send_at > now else now
    await store.insert(
        conn,
        batch_id=batch_id,
        account_id=account.id,
        list_id=spec.list_id,
        created_at=now,
        not_before=spec.send_at,
    )
    write = asyncio.ensure_future(
        store.queue_items(
            conn,
            id_prefix=id_prefix or new_id("req")[:23],
            account_id=account.id,
            list_id=spec.list_id,
            literals=literals,
            keys=keys,
            batch_id=batch_id,
            refused=[],
            priority=int(spec.priority),
            device_id=spec.device_id,
            metadata=spec.metadata,
            expires_at=start + timedelta(seconds=spec.ttl_seconds),
            queued_at=now,
            encoding=constant.encoding if constant is not None else None,
            segments=constant.segments if constant is not None else None,
            gsm_pattern=GSM_TEXT_PATTERN,
            extended_characters=EXTENDED_CHARACTERS,
            send_at=spec.send_at if start > now else None,
        )
    )
    # The policy check (Python) runs on another connection while PostgreSQL writes the items;
    # the few refused ones are then taken out again, in the same transaction.
    try:
        refused = await _refused(policy_db, account, spec.list_id)
    finally:
        written = await write  # (also when the check failed: the connection must be free)
    if refused:
        written -= await store.drop_items(conn, account_id=account.id, batch_id=batch_id, phones=refused)
    queued = written
    skipped_rows = await store.skipped(
        conn, account_id=account.id, list_id=spec.list_id, refused=refused, limit=MAX_SKIPPED_SHOWN
    )
    skipped_total = (
        len(skipped_rows)
        if len(skipped_rows) < MAX_SKIPPED_SHOWN
        else await store.skipped_count(conn, account_id=account.id, list_id=spec.list_id, refused=refused)
    )
    await store.set_totals(conn, batch_id=batch_id, total=queued, skipped=skipped_total)
    if queued == 0:
        await complete_batches(conn, [batch_id])
    return BatchQueued(
        batch_id=batch_id,
        queued=queued,
        skipped=[Skipped(recipient_id=r.recipient_id, phone=r.phone, reason=r.reason) for r in skipped_rows],
        skipped_total=skipped_total,
        queued_at=now,
        status="scheduled" if start > now else "queued",
        send_at=start if start > now else None,
    )


async def get_batch(db: Db, account_id: str, batch_id: str) -> Batch | None:
    """One batch of the account with its progress, or None."""
    row = await store.get(db, account_id=account_id, batch_id=batch_id)
    if row is None:
        return None
    return Batch(
        id=row.id,
        list_id=row.list_id,
        total=row.total,
        skipped=row.skipped,
        counts=await batch_counts(db, batch_id),
        created_at=row.created_at,
        completed_at=row.completed_at,
        cancelled_at=row.cancelled_at,
    )
