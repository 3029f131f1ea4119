"""The OTP service's writes, one transaction for many: sends and verifies are group-committed
(:class:`SendBatcher`, task ``otp.sends``; :class:`VerifyBatcher`, task ``otp.verifies``), with
the limits they enforce in the same transaction (:class:`OtpPolicy`, the per-number caps) and
the outcome of a verify (:class:`Verdict`). Nothing here logs a code or an SMS text.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg
import msgspec

from gateway.access.accounts import Account
from gateway.errors import ApiError
from gateway.events import OtpVerifiedData, event_row
from gateway.logs import get_logger
from gateway.secret import ServerSecret
from gateway.sending.new_message import NewMessage, write_messages
from store import otp as otp_store
from store.batcher import Batcher
from store.otp import OtpVerifyRow, VerifyOutcome
from store.outbox import EventRow, insert_events

__all__ = [
    "MAX_SEND_ROUNDS",
    "OtpPolicy",
    "SendBatcher",
    "SendItem",
    "SendOutcome",
    "Verdict",
    "VerifyBatcher",
    "VerifyItem",
    "check_number_caps",
    "send_batcher",
    "verify_batcher",
    "write_sends",
    "write_verifies",
]

log = get_logger("gateway.otp.writers")


@dataclass(frozen=True, slots=True)
class OtpPolicy:
    """Limits of the OTP service."""

    min_resend_interval: float = 30.0
    """Seconds between two sends to one (number, purpose)."""
    max_sends_per_hour: int = 5
    """Sends to one (number, purpose) in any rolling hour."""
    max_attempts: int = 5
    """Wrong codes before a code is locked."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a verify; ``reason`` is set unless the status is ``success``."""

    otp_id: str
    status: Literal["success", "failed", "expired"]
    attempts_left: int
    reason: str | None = None


_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)


def check_number_caps(account: Account, sent_at: list[datetime], now: datetime) -> None:
    """Refuse when the account's per-number caps (all purposes together) are reached.

    ``sent_at``: the times of the sends to the number in the last 24 hours, oldest first. The
    wait is until enough of them leave the window; of two limits hit, the longer wait counts.
    """
    refusals: list[tuple[timedelta, str, str]] = []
    for cap, window, reason, label in (
        (account.otp_per_number_hour, _HOUR, "otp_per_number_hour", "hour"),
        (account.otp_per_number_day, _DAY, "otp_per_number_day", "24 hours"),
    ):
        inside = [t for t in sent_at if t > now - window]
        if len(inside) >= cap:
            wait = inside[len(inside) - cap] + window - now
            refusals.append((wait, reason, f"at most {cap} codes per {label} to one number (all purposes)"))
    if refusals:
        wait, reason, message = max(refusals)
        raise ApiError.rate_limited(wait.total_seconds(), message, reason=reason)


# --- sends, one transaction for many ----------------------------------------------------------

MAX_SEND_ROUNDS = 20
"""Batches a send may be deferred to (one more for each earlier send to its pair in a batch)."""


@dataclass(frozen=True, slots=True)
class SendItem:
    """One send: the account (its per-number caps), the code's row and its SMS, the policy."""

    account: Account
    purpose: str
    locale: str
    message: NewMessage
    code: otp_store.NewCode
    policy: OtpPolicy


SendOutcome = list[str] | ApiError | None
"""The SMS request ids of the codes replaced; the throttle's refusal; or None: deferred to the
next batch (another send to the same pair came first in this one)."""

SendBatcher = Batcher[SendItem, SendOutcome]
"""The group-commit writer of sends (task ``otp.sends``)."""


def send_batcher(pool: asyncpg.Pool[Any]) -> SendBatcher:
    """A writer of sends for the gateway (run its ``run()`` as a supervised task)."""
    return Batcher(pool, write_sends, name="otp.sends")


async def write_sends(conn: Any, items: Sequence[SendItem]) -> list[SendOutcome]:
    """In the caller's transaction: lock the items' (account, number) pairs, check each item's
    throttles in order against the stored sends and the earlier items of the batch, store the
    admitted ones' SMS and codes (each replacing its pair's pending code). One statement each."""
    numbers = sorted({(i.account.id, i.message.to) for i in items})
    await otp_store.lock_numbers(conn, sorted({otp_store.lock_key(a, n) for a, n in numbers}))
    since = min(i.message.queued_at for i in items) - _DAY
    history = await otp_store.recent_sends(conn, numbers=numbers, since=since)
    outcomes: list[SendOutcome] = []
    taken: set[tuple[str, str, str]] = set()
    admitted: list[SendItem] = []
    for item in items:
        pair = (item.account.id, item.message.to, item.purpose)
        if pair in taken:
            outcomes.append(None)
            continue
        sends = history.setdefault(pair[:2], [])
        now = item.message.queued_at
        try:
            _check_throttle(item.policy, [s.created_at for s in sends if s.purpose == item.purpose], now)
            check_number_caps(item.account, [s.created_at for s in sends if s.created_at > now - _DAY], now)
        except ApiError as exc:
            outcomes.append(exc)
            continue
        taken.add(pair)
        sends.append(otp_store.RecentSend(now, item.purpose))
        admitted.append(item)
        outcomes.append([])
    if admitted:
        await write_messages(conn, [i.message for i in admitted])
        replaced = await otp_store.insert_codes(conn, [i.code for i in admitted])
        for k, item in enumerate(items):
            if outcomes[k] == [] and item.code.id in replaced:
                outcomes[k] = [message_id for _, message_id in replaced[item.code.id]]
                log.info(
                    "otp.invalidated",
                    otp_ids=[i for i, _ in replaced[item.code.id]],
                    replaced_by=item.code.id,
                )
    return outcomes


def _check_throttle(policy: OtpPolicy, pair_sent_at: list[datetime], now: datetime) -> None:
    """Refuse when the (number, purpose) pair's resend interval or hourly limit is reached;
    ``pair_sent_at``: its sends, oldest first."""
    inside = [t for t in pair_sent_at if t > now - _HOUR]
    if inside:
        since_last = (now - inside[-1]).total_seconds()
        if since_last < policy.min_resend_interval:
            raise ApiError.rate_limited(
                policy.min_resend_interval - since_last,
                f"a code was sent to this number for this purpose less than {policy.min_resend_interval:g} s ago",
                reason="otp_resend_interval",
            )
    if len(inside) >= policy.max_sends_per_hour:
        retry = inside[0] + _HOUR - now
        raise ApiError.rate_limited(
            retry.total_seconds(),
            f"at most {policy.max_sends_per_hour} codes per hour to one number for one purpose",
            reason="otp_per_purpose_hour",
        )


# --- verify, one transaction for many ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifyItem:
    """One verify by id: the caller's account, the code id, the code given, and the instant of
    the request (expiry is judged then)."""

    account_id: str
    otp_id: str
    code: str
    now: datetime


VerifyBatcher = Batcher[VerifyItem, Verdict | None]
"""The group-commit writer of verifies (task ``otp.verifies``); ``None``: no such code."""


def verify_batcher(pool: asyncpg.Pool[Any], secret: ServerSecret) -> VerifyBatcher:
    """A writer of verifies for the gateway (run its ``run()`` as a supervised task)."""

    async def write(conn: Any, items: Sequence[VerifyItem]) -> list[Verdict | None]:
        return await write_verifies(conn, items, secret=secret)

    return Batcher(pool, write, name="otp.verifies")


async def write_verifies(
    conn: Any, items: Sequence[VerifyItem], *, secret: ServerSecret
) -> list[Verdict | None]:
    """In the caller's transaction: lock the codes, decide every item in order (two verifies of
    one code in a batch: the second sees the first's outcome), record the new states in one
    statement and the ``otp.verified`` events in another. ``None`` for an unknown code (or
    one of another account)."""
    found = await otp_store.codes_for_update(conn, otp_ids=sorted({i.otp_id for i in items}))
    rows: dict[str, OtpVerifyRow] = {}
    changed: dict[str, VerifyOutcome] = {}
    events: list[EventRow] = []
    verdicts: list[Verdict | None] = []
    for item in items:
        hit = found.get(item.otp_id)
        if hit is None or hit[0] != item.account_id:
            verdicts.append(None)
            continue
        row = rows.get(item.otp_id, hit[1])
        verdict, status, used, verified_at = _decide(row, item.code, item.now, secret)
        verdicts.append(verdict)
        if (status, used) == (row.status, row.attempts_used):
            continue
        rows[row.id] = msgspec.structs.replace(row, status=status, attempts_used=used)
        changed[row.id] = VerifyOutcome(row.id, status, used, verified_at)
        if verified_at is not None:
            data = OtpVerifiedData(
                otp_id=row.id,
                to=row.to_number,
                purpose=row.purpose,
                request_id=row.message_id,
                verified_at=verified_at,
            )
            events.append(event_row(item.account_id, "otp.verified", data))
    await otp_store.record_verifies(conn, list(changed.values()))
    if events:
        await insert_events(conn, events)
    return verdicts


def _decide(
    row: OtpVerifyRow, code: str, now: datetime, secret: ServerSecret
) -> tuple[Verdict, str, int, datetime | None]:
    """``(answer, new status, new attempts_used, verified_at)`` for ``code`` against ``row``."""
    otp_id, status, used, limit = row.id, row.status, row.attempts_used, row.max_attempts
    left = max(0, limit - used)

    def answer(outcome: Literal["success", "failed", "expired"], reason: str | None) -> Verdict:
        return Verdict(otp_id=otp_id, status=outcome, attempts_left=left, reason=reason)

    if status == "verified":
        return answer("failed", "already_used"), status, used, None
    if status == "invalidated":
        return answer("failed", "invalidated"), status, used, None
    if status == "locked":
        return answer("failed", "too_many_attempts"), status, used, None
    if status == "expired" or now >= row.expires_at:
        return answer("expired", "expired"), "expired", used, None
    # Constant-time comparison of the keyed hashes: timing reveals nothing about the code.
    if hmac.compare_digest(secret.keyed_hash(otp_id, code), row.code_hash):
        return answer("success", None), "verified", used, now
    used += 1
    left = max(0, limit - used)
    return answer("failed", "invalid_code"), "locked" if used >= limit else "pending", used, None
