"""One-time codes: send one as an SMS, verify it once, report on it.

* **Send** builds the SMS like any other message (number, relay and queue checks of
  :func:`gateway.sending.messages.build_message`, the account's destination policy among them) at
  :attr:`Priority.OTP`, expiring with the code. In one transaction, under a lock of the
  (account, number), it checks the resend throttle of the (account, number, purpose) pair and
  the account's per-number caps across purposes, invalidates the pair's pending code, and
  stores the message and the code's row; only after the commit is the message queued, and the
  replaced code's SMS cancelled if it is still waiting in the queue (``otp_replaced``). The
  database never holds the code: the message's ``body`` is the text with the code masked
  (``•``), the real text is sealed (``sealed_body``, AES-GCM under the server secret) so the
  SMS survives a restart, and the ``otps`` row holds only an HMAC of the code.
  In the gateway, sends are group-committed (:class:`SendBatcher`, task ``otp.sends``): the
  sends that arrive while a batch is written share the next transaction — the locks of their
  numbers (sorted), their recent sends, their messages, their codes: one statement each — and
  each is answered after that commit. A second send to a pair already in the batch waits for
  the next one, so the throttle sees the first.
* **Verify** locks the code's row, decides, records the outcome and — on success — writes the
  ``otp.verified`` event in the same transaction, so concurrent verifies of one code produce
  exactly one success. In the gateway, verifies are group-committed (:class:`VerifyBatcher`,
  task ``otp.verifies``): the verifies that arrive while a batch is written share the next
  transaction (lock, decide in arrival order, one ``UPDATE`` and one event ``INSERT`` for all),
  and each is answered after that commit.

Time and randomness are injected (``now``, ``generate_code``) so tests can move the clock.
Nothing here logs a code or an SMS text.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg
import msgspec

from gateway.access.accounts import Account
from gateway.errors import ApiError
from gateway.events import OtpVerifiedData, event_row
from gateway.ids import has_prefix, new_id
from gateway.logs import get_logger
from gateway.otp.templates import TEMPLATES, check_template, render, resolve_locale
from gateway.secret import ServerSecret
from gateway.sending.caps import Hold, SendCaps
from gateway.sending.idempotency import replay, store_answer
from gateway.sending.messages import MessageSpec, build_message, is_blank, normalise_number
from gateway.sending.new_message import NewMessage, write_messages
from gateway.sending.pipeline import Pipeline
from gateway.timefmt import utcnow
from scheduler import Priority
from store import otp as otp_store
from store.batcher import Batcher
from store.otp import OtpStatusRow, OtpVerifyRow, VerifyOutcome
from store.outbox import EventRow, insert_events

__all__ = [
    "OtpPolicy",
    "OtpRequest",
    "OtpService",
    "OtpState",
    "SendBatcher",
    "SendItem",
    "SentOtp",
    "Verdict",
    "VerifyBatcher",
    "VerifyItem",
    "generate_code",
    "mask_code",
    "send_batcher",
    "verify_batcher",
]

log = get_logger("gateway.otp.service")

MASK = "•"

OtpState = Literal["pending", "verified", "expired", "locked", "invalidated"]
"""The stored life of a code (``otps.status``)."""


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
class OtpRequest:
    """What a caller asks for (shape already checked by the HTTP layer)."""

    to: str
    purpose: str
    locale: str = "en"
    expires_in_seconds: int = 300
    code_length: int = 6
    app_name: str | None = None
    template: str | None = None
    device_id: str | None = None
    sim_slot: int | None = None


class SentOtp(msgspec.Struct, frozen=True, kw_only=True):
    """A stored and queued code: its id, its SMS's request id and how that SMS travels."""

    otp_id: str
    expires_in_seconds: int
    request_id: str
    expires_at: datetime
    locale: str
    encoding: str
    segments: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a verify; ``reason`` is set unless the status is ``success``."""

    otp_id: str
    status: Literal["success", "failed", "expired"]
    attempts_left: int
    reason: str | None = None


def generate_code(length: int) -> str:
    """``length`` random decimal digits from the operating system's CSPRNG."""
    return f"{secrets.randbelow(10**length):0{length}d}"


def mask_code(length: int) -> str:
    """What stands in for the code in the stored copy of the text."""
    return MASK * length


def _field_error(field: str, reason: str) -> ApiError:
    return ApiError("validation_error", "request body is invalid", {"fields": {field: reason}})


_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)


def _check_number_caps(account: Account, sent_at: list[datetime], now: datetime) -> None:
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


def _not_found(otp_id: str) -> ApiError:
    return ApiError("not_found", "no such OTP", {"otp_id": otp_id[:64]})


class OtpService:
    """Sends, verifies and describes one-time codes for the accounts of one gateway."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        pipeline: Pipeline,
        secret: ServerSecret,
        *,
        max_queue: int,
        caps: SendCaps | None = None,
        policy: OtpPolicy | None = None,
        now: Callable[[], datetime] = utcnow,
        generate_code: Callable[[int], str] = generate_code,
        verifier: VerifyBatcher | None = None,
        sender: SendBatcher | None = None,
    ) -> None:
        self._pool = pool
        self._pipeline = pipeline
        self._secret = secret
        self._max_queue = max_queue
        self._caps = caps
        self._policy = policy or OtpPolicy()
        self._now = now
        self._generate_code = generate_code
        self._verifier = verifier
        self._sender = sender

    # --- send ---------------------------------------------------------------------------------

    async def send(
        self,
        account: Account,
        request: OtpRequest,
        *,
        idempotency_key: str | None = None,
        request_body: bytes = b"",
    ) -> SentOtp:
        """Store a new code and its SMS, then queue the SMS; answer after the commit.

        Raises ``rate_limited`` (throttle), ``validation_error``, ``invalid_device`` or
        ``queue_blocked``. With ``idempotency_key``, a repeat of the same body returns the
        first answer and sends nothing.
        """
        for name, value in (
            ("purpose", request.purpose),
            ("app_name", request.app_name),
            ("template", request.template),
        ):
            if value is not None and is_blank(value):
                raise _field_error(name, "must not be empty or blank")
        try:
            locale = resolve_locale(request.locale)
        except ValueError as exc:
            raise _field_error("locale", str(exc)) from None
        template = TEMPLATES[locale]
        if request.template is not None:
            try:
                check_template(request.template)
            except ValueError as exc:
                raise _field_error("template", str(exc)) from None
            template = request.template
        if self._caps is not None:
            self._caps.queue.check(account.id)
        code = self._generate_code(request.code_length)
        seconds = request.expires_in_seconds
        text = render(template, code=code, seconds=seconds, app_name=request.app_name)
        masked = render(
            template, code=mask_code(request.code_length), seconds=seconds, app_name=request.app_name
        )
        built = build_message(
            account,
            MessageSpec(
                to=request.to,
                text=text,
                kind="otp",
                priority=Priority.OTP,
                ttl_seconds=seconds,
                device_id=request.device_id,
                sim_slot=request.sim_slot,
            ),
            self._pipeline,
            max_queue=self._max_queue,
        )
        now = self._now()
        message = dataclasses.replace(
            built,  # its encoding and segments are the text's: the masked copy has as many characters
            body=masked,
            secret_text=text,
            sealed_body=self._secret.seal(text, built.id),
            queued_at=now,
            expires_at=now + timedelta(seconds=seconds),
        )
        otp_id = new_id("otp")
        answer = SentOtp(
            otp_id=otp_id,
            expires_in_seconds=seconds,
            request_id=message.id,
            expires_at=message.expires_at,
            locale=locale,
            encoding=message.encoding,
            segments=message.segments,
        )
        item = SendItem(
            account=account,
            purpose=request.purpose,
            locale=locale,
            message=message,
            code=otp_store.NewCode(
                id=otp_id,
                account_id=account.id,
                to_number=message.to,
                purpose=request.purpose,
                locale=locale,
                code_hash=self._secret.keyed_hash(otp_id, code),
                code_length=len(code),
                message_id=message.id,
                max_attempts=self._policy.max_attempts,
                expires_at=message.expires_at,
                created_at=now,
            ),
            policy=self._policy,
        )
        async with self._admit(account, message.to) as hold:
            if idempotency_key is None:
                replaced = await self._store(item)
            else:
                replay_answer, replaced = await self._store_once(item, answer, idempotency_key, request_body)
                if replay_answer is not None:
                    hold.release()
                    return replay_answer
        self._pipeline.queue_committed(message)
        if replaced:
            await self._cancel_replaced(replaced)
        log.info(
            "otp.sent",
            otp_id=otp_id,
            account_id=account.id,
            request_id=message.id,
            purpose=request.purpose,
            locale=locale,
            segments=message.segments,
        )
        return answer

    async def _cancel_replaced(self, message_ids: list[str]) -> None:
        """The SMS of codes a new one replaced: cancelled if still queued (their codes no longer
        verify). The new code is committed whatever happens here."""
        try:
            cancelled = await self._pipeline.cancel_queued(message_ids, "otp_replaced")
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("otp.cancel_replaced_failed", request_ids=message_ids, error=repr(exc))
            return
        if cancelled:
            log.info("otp.replaced_sms_cancelled", request_ids=cancelled)

    def _admit(self, account: Account, to: str) -> AbstractAsyncContextManager[Hold]:
        """The account's send caps (none without a :class:`SendCaps`)."""
        if self._caps is None:
            return nullcontext(Hold(None, None, 0.0))
        return self._caps.admit(account, to)

    async def _store(self, item: SendItem) -> list[str]:
        """Store the code and its SMS (group-committed when the service has a
        :class:`SendBatcher`); the SMS request ids of the codes it replaced."""
        for _ in range(MAX_SEND_ROUNDS):
            if self._sender is not None:
                outcome = await self._sender.submit(item)
            else:
                async with self._pool.acquire() as conn, conn.transaction():
                    (outcome,) = await write_sends(conn, [item])
            if isinstance(outcome, ApiError):
                raise outcome
            if outcome is not None:
                return outcome
            # another send to the same pair was in the batch: this one goes in the next
        raise ApiError(
            "unavailable", "too many concurrent sends to this number; retry", {"retry_after_seconds": 1}
        )

    async def _store_once(
        self, item: SendItem, answer: SentOtp, key: str, request_body: bytes
    ) -> tuple[SentOtp | None, list[str]]:
        """A send with an ``Idempotency-Key``, in its own transaction with the key: ``(the first
        answer when this is a replay, the SMS request ids of the codes it replaced)``."""
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                stored = await store_answer(conn, item.account.id, key, request_body, answer)
                replaced: list[str] = []
                if stored:
                    (outcome,) = await write_sends(conn, [item])
                    if isinstance(outcome, ApiError):
                        raise outcome
                    assert outcome is not None  # a batch of one never defers
                    replaced = outcome
            if not stored:
                return await replay(conn, item.account.id, key, request_body, SentOtp), []
        return None, replaced

    # --- verify -------------------------------------------------------------------------------

    async def verify(
        self,
        account: Account,
        code: str,
        *,
        otp_id: str | None = None,
        to: str | None = None,
        purpose: str | None = None,
    ) -> Verdict:
        """Check ``code`` against the code ``otp_id`` (or the latest one of ``to`` + ``purpose``).

        ``success`` once; then ``failed``/``already_used``. A wrong code uses an attempt; after
        the last one the code is locked (``failed``/``too_many_attempts`` even for the right
        code). ``expired`` from the expiry on. Raises ``not_found`` for an unknown id (or one of
        another account). Verifies by id are group-committed when the service has a
        :class:`VerifyBatcher`: concurrent verifies share one transaction, and each answer
        comes after that commit.
        """
        if otp_id is None:
            assert to is not None and purpose is not None
            number = normalise_number(to, account.default_region)
            otp_id = await self._latest_id(account.id, number, purpose)
        elif not has_prefix(otp_id, "otp"):
            raise _not_found(otp_id)
        item = VerifyItem(account_id=account.id, otp_id=otp_id, code=code, now=self._now())
        if self._verifier is not None:
            verdict = await self._verifier.submit(item)
        else:
            async with self._pool.acquire() as conn, conn.transaction():
                (verdict,) = await write_verifies(conn, [item], secret=self._secret)
        if verdict is None:
            raise _not_found(otp_id)
        log.info(
            "otp.verify",
            otp_id=verdict.otp_id,
            account_id=account.id,
            status=verdict.status,
            reason=verdict.reason,
            attempts_left=verdict.attempts_left,
        )
        return verdict

    async def _latest_id(self, account_id: str, number: str, purpose: str) -> str:
        """The id of the pair's latest code (verified by id from there: a newer code sent in
        between replaced this one, which then answers ``invalidated``)."""
        async with self._pool.acquire() as conn:
            row = await otp_store.latest_code(conn, account_id=account_id, to=number, purpose=purpose)
        if row is None:
            raise ApiError("not_found", "no OTP was sent to this number for this purpose")
        return row

    # --- status -------------------------------------------------------------------------------

    async def status(self, account: Account, otp_id: str) -> OtpStatusRow:
        """The code's row joined with its SMS's state (never the code or its hash)."""
        row = None
        if has_prefix(otp_id, "otp"):
            async with self._pool.acquire() as conn:
                row = await otp_store.otp_status(conn, otp_id=otp_id, account_id=account.id)
        if row is None:
            raise _not_found(otp_id)
        return row

    def effective_status(self, row: OtpStatusRow) -> OtpState:
        """The stored status, with a pending code past its expiry shown as ``expired``."""
        if row.status == "pending" and self._now() >= row.expires_at:
            return "expired"
        state: OtpState = row.status  # type: ignore[assignment]
        return state


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
            _check_number_caps(item.account, [s.created_at for s in sends if s.created_at > now - _DAY], now)
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
