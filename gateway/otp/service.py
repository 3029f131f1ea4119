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
  In the gateway, sends are group-committed (:class:`~gateway.otp.writers.SendBatcher`, task ``otp.sends``): the
  sends that arrive while a batch is written share the next transaction — the locks of their
  numbers (sorted), their recent sends, their messages, their codes: one statement each — and
  each is answered after that commit. A second send to a pair already in the batch waits for
  the next one, so the throttle sees the first.
* **Verify** locks the code's row, decides, records the outcome and — on success — writes the
  ``otp.verified`` event in the same transaction, so concurrent verifies of one code produce
  exactly one success. In the gateway, verifies are group-committed (:class:`~gateway.otp.writers.VerifyBatcher`,
  task ``otp.verifies``): the verifies that arrive while a batch is written share the next
  transaction (lock, decide in arrival order, one ``UPDATE`` and one event ``INSERT`` for all),
  and each is answered after that commit.

Time and randomness are injected (``now``, ``generate_code``) so tests can move the clock.
Nothing here logs a code or an SMS text.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg
import msgspec

from gateway.access.accounts import Account
from gateway.errors import ApiError
from gateway.ids import has_prefix, new_id
from gateway.logs import get_logger
from gateway.otp.templates import TEMPLATES, check_template, render, resolve_locale
from gateway.otp.writers import (
    MAX_SEND_ROUNDS,
    OtpPolicy,
    SendBatcher,
    SendItem,
    Verdict,
    VerifyBatcher,
    VerifyItem,
    write_sends,
    write_verifies,
)
from gateway.secret import ServerSecret
from gateway.sending.caps import Hold, SendCaps
from gateway.sending.idempotency import replay, store_answer
from gateway.sending.messages import MessageSpec, build_message, is_blank, normalise_number
from gateway.sending.pipeline import Pipeline
from gateway.timefmt import utcnow
from scheduler import Priority
from store import otp as otp_store
from store.otp import OtpStatusRow

__all__ = [
    "OtpRequest",
    "OtpService",
    "OtpState",
    "SentOtp",
    "generate_code",
    "mask_code",
]

log = get_logger("gateway.otp.service")

MASK = "•"

OtpState = Literal["pending", "verified", "expired", "locked", "invalidated"]
"""The stored life of a code (``otps.status``)."""


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


def generate_code(length: int) -> str:
    """``length`` random decimal digits from the operating system's CSPRNG."""
    return f"{secrets.randbelow(10**length):0{length}d}"


def mask_code(length: int) -> str:
    """What stands in for the code in the stored copy of the text."""
    return MASK * length


def _field_error(field: str, reason: str) -> ApiError:
    return ApiError("validation_error", "request body is invalid", {"fields": {field: reason}})


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
        message = msgspec.structs.replace(
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
        return self._caps.admit(account, to, opt_out=False)  # login codes are transactional

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
