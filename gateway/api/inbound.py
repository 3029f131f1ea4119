"""Inbound SMS: ``GET /v1/inbound`` lists what the account's relays received, oldest first
(WebSocket relays through protocol v1.1 ``inbound``, SMSGate phones through ``sms:received``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from gateway.api.common import PageQuery, invalid_query, page
from gateway.api.routing import Call
from gateway.recipients.numbers import InvalidNumber, e164
from store.inbound import InboundRow, inbound_page

__all__ = ["InboundList", "InboundQuery", "InboundView", "list_inbound"]


class InboundQuery(PageQuery, kw_only=True):
    """Filters of ``GET /v1/inbound``."""

    from_: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = msgspec.field(
        default=None, name="from"
    )
    """The sender: a number in any format (normalised like ``to`` of a send) or a sender id."""
    since: datetime | None = None
    """RFC 3339 with an offset; compared with ``received_at``."""


class InboundView(msgspec.Struct, kw_only=True):
    """One received SMS."""

    id: str
    from_: str = msgspec.field(name="from")
    text: str
    device_id: str
    sim_slot: int | None
    received_at: datetime
    stored_at: datetime
    opt_action: Literal["opted_out", "opted_in"] | None
    """Set when the text opted the number out (STOP…) or back in (START)."""
    in_reply_to: str | None
    """The ``request_id`` of the latest message the account sent to that number before: replies
    are threaded by number (``GET /v1/messages?to=`` lists the rest of the thread)."""


class InboundList(msgspec.Struct, kw_only=True):
    """A page of received SMS."""

    ok: bool = True
    inbound: list[InboundView]
    next_cursor: str | None


def _view(row: InboundRow) -> InboundView:
    return InboundView(
        id=row.id,
        from_=row.from_number,
        text=row.body,
        device_id=row.device_id,
        sim_slot=row.sim_slot,
        received_at=row.received_at,
        stored_at=row.stored_at,
        opt_action=row.opt_action,
        in_reply_to=row.in_reply_to,
    )


async def list_inbound(call: Call[None, InboundQuery]) -> InboundList:
    """The account's received SMS, oldest first, filtered by sender and time."""
    assert call.principal is not None
    query = call.query
    sender = query.from_ or ""
    if sender and (sender.startswith("+") or sender.replace(" ", "").isdigit()):
        try:
            sender = e164(sender, call.principal.account.default_region)
        except InvalidNumber as exc:
            raise invalid_query("from", str(exc)) from None
    rows = await inbound_page(
        call.services.pool,
        account_id=call.account_id,
        sender=sender,
        since=query.since,
        after=query.cursor,
        limit=query.limit + 1,
    )
    items, next_cursor = page(rows, query.limit, _view, lambda v: v.id)
    return InboundList(inbound=items, next_cursor=next_cursor)


def examples(when: datetime) -> dict[type[Any], Any]:
    """Example answers for the OpenAPI document."""
    view = InboundView(
        id="inb_01HV4Z8K2M3N4P5Q6R7S8T9V0W",
        from_="+998901234567",
        text="STOP",
        device_id="dev_01HV4Z8K2M3N4P5Q6R7S8T9V0X",
        sim_slot=0,
        received_at=when,
        stored_at=when,
        opt_action="opted_out",
        in_reply_to="req_01HV4Z8K2M3N4P5Q6R7S8T9V0Y",
    )
    return {InboundList: InboundList(inbound=[view], next_cursor=None)}
