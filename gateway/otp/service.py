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
* **Verify** locks the code's row, decides, records the outcome and — on success — writes the
  ``otp.verified`` event in the same transaction, so concurrent verifies of one code produce
  exactly one success.

Time and randomness are injected (``now``, ``generate_code``) so tests can move the clock.
Nothing here logs a code or an SMS text.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
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
from gateway.events import OtpVerifiedData, emit
from gateway.ids import has_prefix, new_id
from gateway.logs import get_logger
from gateway.otp.templates import TEMPLATES, check_template, render, resolve_locale
from gateway.secret import ServerSecret
from gateway.sending.caps import Hold, SendCaps
from gateway.sending.messages import MessageSpec, build_message, is_blank, normalise_number
from gateway.sending.pipeline import NewMessage, Pipeline
from gateway.sending.sms_text import analyse
from gateway.timefmt import utcnow
from scheduler import Priority
from store import queries as q

__all__ = [
    "OtpPolicy",
    "OtpRequest",
    "OtpService",
    "OtpState",
    "SentOtp",
    "Verdict",
    "generate_code",
    "mask_code",
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


@dataclass(frozen=True, slots=True)
class SentOtp:
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
    ) -> None:
        self._pool = pool
        self._pipeline = pipeline
        self._secret = secret
        self._max_queue = max_queue
        self._caps = caps
        self._policy = policy or OtpPolicy()
        self._now = now
        self._generate_code = generate_code

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
        info = analyse(text)
        message = dataclasses.replace(
            built,
            body=masked,
            secret_text=text,
            sealed_body=self._secret.seal(text, built.id),
            encoding=info.encoding,
            segments=info.segments,
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
            encoding=info.encoding,
            segments=info.segments,
        )
        async with self._admit(account, message.to) as hold:
            replay, replaced = await self._store(
                account, request.purpose, locale, code, otp_id, message, answer, idempotency_key, request_body
            )
            if replay is not None:
                hold.release()
                return replay
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
            segments=info.segments,
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

    async def _store(
        self,
        account: Account,
        purpose: str,
        locale: str,
        code: str,
        otp_id: str,
        message: NewMessage,
        answer: SentOtp,
        idempotency_key: str | None,
        request_body: bytes,
    ) -> tuple[SentOtp | None, list[str]]:
        """The one transaction of a send: ``(the stored answer when this is an idempotent replay,
        the SMS request ids of the codes it replaced)``."""
        now = message.queued_at
        pair = (account.id, message.to, purpose)
        async with self._pool.acquire() as conn, conn.transaction():
            # One lock per (account, number): the per-number caps span every purpose.
            await conn.execute(q.OTP_LOCK_PAIR, "\x1f".join(("otp", account.id, message.to)))
            if idempotency_key is not None:
                replay = await self._replay(conn, account.id, idempotency_key, request_body, answer)
                if replay is not None:
                    return replay, []
            window = await conn.fetchrow(q.OTP_SEND_WINDOW, *pair, now - timedelta(hours=1))
            assert window is not None
            self._check_throttle(window, now)
            sent_at = await conn.fetchval(q.OTP_NUMBER_SENDS, account.id, message.to, now - _DAY)
            _check_number_caps(account, list(sent_at), now)
            invalidated = await conn.fetch(q.OTP_INVALIDATE_PENDING, *pair, now)
            await conn.execute(q.MESSAGE_INSERT, *message.row())
            await conn.execute(
                q.OTP_INSERT,
                otp_id,
                account.id,
                message.to,
                purpose,
                locale,
                self._secret.keyed_hash(otp_id, code),
                len(code),
                message.id,
                self._policy.max_attempts,
                message.expires_at,
                now,
            )
        if invalidated:
            log.info("otp.invalidated", otp_ids=[r["id"] for r in invalidated], replaced_by=otp_id)
        return None, [r["message_id"] for r in invalidated]

    async def _replay(
        self, conn: Any, account_id: str, key: str, request_body: bytes, answer: SentOtp
    ) -> SentOtp | None:
        """Record ``key`` with ``answer``; if it was used before, the first answer (or conflict)."""
        digest = hashlib.sha256(request_body).digest()
        inserted = await conn.fetchval(q.IDEMPOTENCY_INSERT, account_id, key, digest, answer)
        if inserted is not None:
            return None
        row = await conn.fetchrow(q.IDEMPOTENCY_GET, account_id, key)
        if bytes(row["request_hash"]) != digest:
            raise ApiError(
                "conflict",
                "this Idempotency-Key was used with a different request body",
                {"idempotency_key": key},
            )
        return msgspec.convert(row["response"], SentOtp)

    def _check_throttle(self, window: Any, now: datetime) -> None:
        policy = self._policy
        if window["last_at"] is not None:
            since_last = (now - window["last_at"]).total_seconds()
            if since_last < policy.min_resend_interval:
                raise ApiError.rate_limited(
                    policy.min_resend_interval - since_last,
                    f"a code was sent to this number for this purpose less than "
                    f"{policy.min_resend_interval:g} s ago",
                    reason="otp_resend_interval",
                )
        if window["sent"] >= policy.max_sends_per_hour:
            retry = window["first_at"] + timedelta(hours=1) - now
            raise ApiError.rate_limited(
                retry.total_seconds(),
                f"at most {policy.max_sends_per_hour} codes per hour to one number for one purpose",
                reason="otp_per_purpose_hour",
            )

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
        another account).
        """
        number = None
        if otp_id is None:
            assert to is not None and purpose is not None
            number = normalise_number(to, account.default_region)
        elif not has_prefix(otp_id, "otp"):
            raise _not_found(otp_id)
        async with self._pool.acquire() as conn, conn.transaction():
            if otp_id is not None:
                row = await conn.fetchrow(q.OTP_BY_ID_FOR_UPDATE, otp_id, account.id)
            else:
                row = await conn.fetchrow(q.OTP_LATEST_FOR_UPDATE, account.id, number, purpose)
            if row is None:
                if otp_id is not None:
                    raise _not_found(otp_id)
                raise ApiError("not_found", "no OTP was sent to this number for this purpose")
            verdict, status, used, verified_at = self._decide(row, code)
            if (status, used) != (row["status"], row["attempts_used"]):
                await conn.execute(q.OTP_RECORD_VERIFY, row["id"], status, used, verified_at)
            if verified_at is not None:
                data = OtpVerifiedData(
                    otp_id=row["id"],
                    to=row["to_number"],
                    purpose=row["purpose"],
                    request_id=row["message_id"],
                    verified_at=verified_at,
                )
                await emit(conn, account.id, "otp.verified", data)
        log.info(
            "otp.verify",
            otp_id=verdict.otp_id,
            account_id=account.id,
            status=verdict.status,
            reason=verdict.reason,
            attempts_left=verdict.attempts_left,
        )
        return verdict

    def _decide(self, row: Any, code: str) -> tuple[Verdict, str, int, datetime | None]:
        """``(answer, new status, new attempts_used, verified_at)`` for ``code`` against ``row``."""
        otp_id, status, used, limit = row["id"], row["status"], row["attempts_used"], row["max_attempts"]
        left = max(0, limit - used)

        def answer(outcome: Literal["success", "failed", "expired"], reason: str | None) -> Verdict:
            return Verdict(otp_id=otp_id, status=outcome, attempts_left=left, reason=reason)

        if status == "verified":
            return answer("failed", "already_used"), status, used, None
        if status == "invalidated":
            return answer("failed", "invalidated"), status, used, None
        if status == "locked":
            return answer("failed", "too_many_attempts"), status, used, None
        now = self._now()
        if status == "expired" or now >= row["expires_at"]:
            return answer("expired", "expired"), "expired", used, None
        # Constant-time comparison of the keyed hashes: timing reveals nothing about the code.
        if hmac.compare_digest(self._secret.keyed_hash(otp_id, code), bytes(row["code_hash"])):
            return answer("success", None), "verified", used, now
        used += 1
        left = max(0, limit - used)
        return answer("failed", "invalid_code"), "locked" if used >= limit else "pending", used, None

    # --- status -------------------------------------------------------------------------------

    async def status(self, account: Account, otp_id: str) -> Any:
        """The code's row joined with its SMS's state (never the code or its hash)."""
        row = None
        if has_prefix(otp_id, "otp"):
            row = await self._pool.fetchrow(q.OTP_STATUS, otp_id, account.id)
        if row is None:
            raise _not_found(otp_id)
        return row

    def effective_status(self, row: Any) -> OtpState:
        """The stored status, with a pending code past its expiry shown as ``expired``."""
        if row["status"] == "pending" and self._now() >= row["expires_at"]:
            return "expired"
        state: OtpState = row["status"]
        return state
