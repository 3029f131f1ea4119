"""A validated message on its way into the database: what every send path builds, and the
group-commit write that stores a batch of them (the ``messages.accept`` writer)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec

from scheduler import Priority
from store.messages import NewMessageRow, insert_messages

__all__ = ["NewMessage", "write_messages"]


class NewMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A validated message ready to be stored (a Struct: every accept makes one, and a frozen
    dataclass of 18 fields costs several times as much to build)."""

    id: str
    account_id: str
    kind: str
    to: str
    body: str
    encoding: str
    segments: int
    priority: Priority
    pinned_device: str | None
    sim_slot: int | None
    metadata: dict[str, Any] | None
    expires_at: datetime
    queued_at: datetime
    secret_text: str | None = None
    """The text to send when ``body`` is only a display copy (an OTP with its code masked).
    Kept in memory; stored only as ``sealed_body``."""
    sealed_body: bytes | None = None
    status: Literal["queued", "scheduled"] = "queued"
    """``scheduled``: held until ``not_before`` (see :mod:`gateway.sending.held`)."""
    send_at: datetime | None = None
    """The time the request asked for, if any."""
    not_before: datetime | None = None
    """When a scheduled message joins the queue: ``send_at``, or the next opening of the
    account's sending window (quiet hours)."""
    hold_reason: Literal["send_at", "quiet_hours"] | None = None

    @property
    def text(self) -> str:
        """What the relay sends."""
        return self.secret_text if self.secret_text is not None else self.body

    def row(self) -> NewMessageRow:
        """What the database stores of it."""
        return NewMessageRow(
            self.id,
            self.account_id,
            self.kind,
            self.to,
            self.body,
            self.encoding,
            self.segments,
            int(self.priority),
            self.pinned_device,
            self.sim_slot,
            self.metadata,
            self.expires_at,
            self.queued_at,
            self.sealed_body,
            self.status,
            self.send_at,
            self.not_before,
            self.hold_reason,
        )


async def write_messages(conn: Any, items: Sequence[NewMessage]) -> list[None]:
    """Insert a batch of new messages with one statement."""
    await insert_messages(conn, [m.row() for m in items])
    return [None] * len(items)
