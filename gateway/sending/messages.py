"""Turning a send request into a validated, stored, queued message.

Numbers are parsed with ``phonenumbers`` (national numbers use the account's default region;
``+<digits>`` takes the directory's fast path, :mod:`gateway.recipients.numbers`, with the same
verdicts) and stored in E.164, after the account's destination policy
(:mod:`gateway.sending.number_policy`) accepted them. A text of only invisible characters is
blank (:func:`is_blank`). The text's encoding and segment count are computed here. A message
with ``send_at`` in the future, or one the account's quiet hours hold
(:mod:`gateway.sending.quiet_hours`), is stored ``scheduled`` until then, and its
``ttl_seconds`` count from that time. A request with an ``Idempotency-Key`` is stored in its
own transaction together with the key and its answer, so concurrent requests with one key make
exactly one message.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import msgspec
import phonenumbers

from gateway.access.accounts import Account
from gateway.errors import ApiError
from gateway.ids import new_id
from gateway.recipients.numbers import InvalidNumber, e164, refused_numbers
from gateway.sending.idempotency import replay, store_answer
from gateway.sending.new_message import NewMessage, write_messages
from gateway.sending.number_policy import check_destination
from gateway.sending.pipeline import Pipeline
from gateway.sending.quiet_hours import hold_until
from gateway.sending.sms_text import analyse
from scheduler import Priority

__all__ = [
    "Accepted",
    "MessageSpec",
    "accept_message",
    "check_pinned_device",
    "is_blank",
    "normalise_number",
]

MAX_METADATA_BYTES = 1024
MAX_SCHEDULE_AHEAD = timedelta(days=30)
"""``send_at`` at most this far ahead."""
SEND_AT_SKEW = timedelta(seconds=60)
"""A ``send_at`` this much in the past is taken as "now" (clocks differ); earlier is refused."""

INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})
"""Space separators, line/paragraph separators, controls and format characters (ZWSP, ZWJ,
U+2060 WORD JOINER, U+FEFF BOM, bidi marks, tags, …)."""
INVISIBLE_EXTRA = frozenset(
    {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180F, 0x2800, 0x3164, 0xFFA0}
    | set(range(0xFE00, 0xFE10))
    | set(range(0xE0100, 0xE01F0))
)
"""Characters of other categories that render as nothing: the combining grapheme joiner, the
Hangul fillers, Khmer inherent vowels, Mongolian and other variation selectors, and
U+2800 BRAILLE PATTERN BLANK."""


def is_blank(text: str) -> bool:
    """True when nothing in ``text`` would show: only whitespace and invisible characters."""
    return all(
        ord(ch) in INVISIBLE_EXTRA or unicodedata.category(ch) in INVISIBLE_CATEGORIES or ch.isspace()
        for ch in text
    )


class MessageSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What a caller asks to send (already shape-checked by the HTTP layer)."""

    to: str
    text: str
    kind: str = "sms"
    priority: Priority = Priority.NORMAL
    ttl_seconds: int = 3600
    device_id: str | None = None
    sim_slot: int | None = None
    metadata: dict[str, Any] | None = None
    send_at: datetime | None = None
    """Not before this instant (timezone-aware); None: now."""


class Accepted(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The contract's answer: queued (or scheduled), after the commit. ``not_before`` and
    ``hold_reason`` appear only on a scheduled message."""

    ok: bool
    request_id: str
    status: str
    """``queued``, or ``scheduled`` when it waits for ``not_before``."""
    queued_at: datetime
    """When it was accepted."""
    not_before: datetime | None = None
    """A scheduled message joins the queue then (null when queued)."""
    hold_reason: str | None = None
    """Why it waits: ``send_at`` (asked for) or ``quiet_hours`` (the account's sending windows)."""


def _field_error(field: str, reason: str) -> ApiError:
    return ApiError("validation_error", "request body is invalid", {"fields": {field: reason}})


def normalise_number(raw: str, region: str | None) -> str:
    """E.164 form of ``raw`` (:func:`gateway.recipients.numbers.e164`: fast for ``+<digits>``);
    validation_error naming ``to`` when it is not a valid number."""
    try:
        return e164(raw, region)
    except InvalidNumber as exc:
        raise _field_error("to", str(exc)) from None


def check_metadata(metadata: dict[str, Any] | None) -> None:
    """``validation_error`` naming ``metadata`` when its JSON is over ``MAX_METADATA_BYTES``."""
    if metadata is not None and len(json.dumps(metadata)) > MAX_METADATA_BYTES:
        raise _field_error("metadata", f"at most {MAX_METADATA_BYTES} bytes of JSON")


def sending_start(send_at: datetime | None, now: datetime) -> datetime:
    """When a message (or a list send) asking for ``send_at`` may go: ``now`` or later.
    ``validation_error`` naming ``send_at`` when it is too far in the past or the future."""
    if send_at is None:
        return now
    try:
        at = send_at.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00: no such UTC time
        raise _field_error("send_at", "out of range") from None
    if at < now - SEND_AT_SKEW:
        raise _field_error("send_at", "is in the past")
    if at > now + MAX_SCHEDULE_AHEAD:
        raise _field_error("send_at", f"at most {MAX_SCHEDULE_AHEAD.days} days ahead")
    return max(now, at)


def check_pinned_device(
    account: Account, pipeline: Pipeline, pinned: str | None, sim_slot: int | None
) -> None:
    """``invalid_device`` unless ``pinned`` (None: the scheduler picks) is an enabled relay of
    the account that declared ``sim_slot``; ``validation_error`` when the account's relay mode
    is manual and no relay is named."""
    if pinned is None and account.relay_mode == "manual":
        raise _field_error("device_id", "required: the account's relay mode is manual")
    if pinned is not None:
        device = pipeline.hub.device(pinned)
        if device is None or device.account_id != account.id:
            raise ApiError("invalid_device", "no such relay on this account", {"device_id": pinned[:64]})
        if not device.enabled:
            raise ApiError("invalid_device", "this relay is disabled for routing", {"device_id": pinned})
        declared = pipeline.declared_sim_slots(pinned)
        if sim_slot is not None and sim_slot not in declared:
            raise ApiError(
                "invalid_device",
                f"this relay has not declared SIM slot {sim_slot}",
                {"device_id": pinned, "sim_slot": sim_slot, "declared_slots": sorted(declared)},
            )


def build_message(account: Account, spec: MessageSpec, pipeline: Pipeline, *, max_queue: int) -> NewMessage:
    """Validate ``spec`` for ``account`` and build the row to store (no I/O)."""
    if is_blank(spec.text):
        raise _field_error("message", "must not be empty or blank")
    to = normalise_number(spec.to, account.default_region)
    if refused_numbers([to], account.allowed_number_types, account.allowed_countries):
        # the refusal's own words (the fast check says only yes or no)
        check_destination(phonenumbers.parse(to), account.allowed_number_types, account.allowed_countries)
        raise _field_error("to", "not allowed for this account")
    check_metadata(spec.metadata)
    pinned = spec.device_id
    check_pinned_device(account, pipeline, pinned, spec.sim_slot)
    if pipeline.queue_depth(account.id) >= max_queue:
        raise ApiError(
            "queue_blocked",
            "the account's queue is full; retry later",
            {"reason": "queue_full", "queue_depth": pipeline.queue_depth(account.id)},
        )
    info = analyse(spec.text)
    now = pipeline.now()
    start = sending_start(spec.send_at, now)
    send_at = None if spec.send_at is None else spec.send_at.astimezone(UTC)  # (checked above)
    release = datetime.fromtimestamp(hold_until(account.quiet_hours, spec.priority, start.timestamp()), UTC)
    scheduled = release > now
    hold_reason: Literal["send_at", "quiet_hours"] | None = None
    if scheduled:
        hold_reason = "quiet_hours" if release > start else "send_at"
    return NewMessage(
        id=new_id("req"),
        account_id=account.id,
        kind=spec.kind,
        to=to,
        body=spec.text,
        encoding=info.encoding,
        segments=info.segments,
        priority=spec.priority,
        pinned_device=pinned,
        sim_slot=spec.sim_slot,
        metadata=spec.metadata,
        expires_at=release + timedelta(seconds=spec.ttl_seconds),
        queued_at=now,
        status="scheduled" if scheduled else "queued",
        send_at=send_at,
        not_before=release if scheduled else None,
        hold_reason=hold_reason,
    )


async def accept_message(
    pool: asyncpg.Pool[Any],
    pipeline: Pipeline,
    message: NewMessage,
    *,
    idempotency_key: str | None = None,
    request_body: bytes = b"",
) -> Accepted:
    """Store and queue ``message``; with a key, replay or refuse per the key's first request."""
    answer = Accepted(
        ok=True,
        request_id=message.id,
        status=message.status,
        queued_at=message.queued_at,
        not_before=message.not_before,
        hold_reason=message.hold_reason,
    )
    if idempotency_key is None:
        await pipeline.accept(message)
        return answer
    async with pool.acquire() as conn:
        async with conn.transaction():
            inserted = await store_answer(conn, message.account_id, idempotency_key, request_body, answer)
            if inserted:
                await write_messages(conn, [message])
        if not inserted:
            replayed = await replay(conn, message.account_id, idempotency_key, request_body, Accepted)
    if inserted:
        pipeline.queue_committed(message)
        return answer
    assert replayed is not None
    return replayed
