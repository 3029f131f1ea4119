"""Inbound SMS from relays of both kinds: a WebSocket relay's v1.1 ``inbound`` frame and an
SMSGate phone's ``sms:received`` webhook end in :meth:`InboundDesk.store`.

One transaction per SMS: the row (a relay's retry of the same ``(device, id)`` is stored once
and changes nothing), the ``message.received`` event, and — when the whole text is an opt-out
keyword (STOP, UNSUBSCRIBE, STOPALL, END, CANCEL, QUIT or a configured local word) or START (or
a local opt-in word) from a number we can read — the recipients directory's opt-out flag and
``recipient.opted_out`` / ``recipient.opted_in``. The relay is acknowledged only after the commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from gateway.events import InboundEventData, OptOutEventData, emit
from gateway.ids import new_id
from gateway.logs import get_logger
from gateway.recipients.directory import set_opt_out
from gateway.recipients.numbers import InvalidNumber, e164
from store.accounts import account_by_id
from store.inbound import insert_inbound, latest_sent_to

__all__ = ["OPT_IN_WORDS", "OPT_OUT_WORDS", "InboundDesk", "InboundSms", "keyword"]

log = get_logger("gateway.fleet.inbound")

OPT_OUT_WORDS = frozenset({"STOP", "UNSUBSCRIBE", "STOPALL", "END", "CANCEL", "QUIT"})
OPT_IN_WORDS = frozenset({"START"})
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_APOSTROPHES = str.maketrans(dict.fromkeys("\u02bb\u02bc\u2019\u2018`", "'"))
"""Uzbek Latin writes its o' and g' with any of these."""


@dataclass(frozen=True, slots=True)
class InboundSms:
    """One received SMS as a relay forwarded it."""

    account_id: str
    device_id: str
    relay_id: str
    sender: str
    text: str
    received_at: datetime
    sim_slot: int | None


def keyword(text: str) -> str:
    """The text as a keyword: trimmed, upper-cased, apostrophes unified, end punctuation off."""
    return text.translate(_APOSTROPHES).strip().strip(".!").strip().upper()


class InboundDesk:
    """Stores inbound SMS and applies opt-out keywords."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        *,
        opt_out_words: tuple[str, ...] = (),
        opt_in_words: tuple[str, ...] = (),
    ) -> None:
        self._pool = pool
        self._opt_out = OPT_OUT_WORDS | {keyword(w) for w in opt_out_words}
        self._opt_in = OPT_IN_WORDS | {keyword(w) for w in opt_in_words}

    async def store(self, sms: InboundSms) -> str | None:
        """Store ``sms`` (and its opt-out effect); its id, or None for a retry already stored."""
        sender = _CONTROL.sub("", sms.sender).strip()[:32] or "unknown"
        word = keyword(sms.text)
        async with self._pool.acquire() as conn, conn.transaction():
            account = await account_by_id(conn, account_id=sms.account_id)
            if account is None:
                return None
            try:
                number: str | None = e164(sender, account.default_region)
            except InvalidNumber:
                number = None  # an alphanumeric sender id: stored, never opted out
            action: Literal["opted_out", "opted_in"] | None = None
            if number is not None and word in self._opt_out:
                action = "opted_out"
            elif number is not None and word in self._opt_in:
                action = "opted_in"
            inbound_id = new_id("inb")
            reply_to = (
                None
                if number is None
                else await latest_sent_to(conn, account_id=sms.account_id, to_number=number)
            )
            stored = await insert_inbound(
                conn,
                inbound_id=inbound_id,
                account_id=sms.account_id,
                device_id=sms.device_id,
                relay_message_id=sms.relay_id,
                from_number=number or sender,
                body=sms.text,
                sim_slot=sms.sim_slot,
                received_at=sms.received_at,
                opt_action=action,
                in_reply_to=reply_to,
            )
            if not stored:
                return None
            data = InboundEventData(
                inbound_id=inbound_id,
                from_=number or sender,
                text=sms.text,
                device_id=sms.device_id,
                sim_slot=sms.sim_slot,
                received_at=sms.received_at,
                opt_action=action,
                in_reply_to=reply_to,
            )
            await emit(conn, sms.account_id, "message.received", data)
            if action is not None and number is not None:
                recipient = await set_opt_out(conn, sms.account_id, number, action == "opted_out")
                change = OptOutEventData(
                    phone=number,
                    opted_out=action == "opted_out",
                    keyword=word[:32],
                    inbound_id=inbound_id,
                    recipient_id=recipient.id,
                )
                await emit(conn, sms.account_id, f"recipient.{action}", change)
        log.info("inbound.stored", inbound_id=inbound_id, device_id=sms.device_id, opt_action=action)
        return inbound_id
