"""``POST /v1/otp/send``, ``POST /v1/otp/verify`` and ``GET /v1/otp/{otp_id}``.

Thin handlers over :class:`gateway.otp.service.OtpService`: decode, authorize, call, encode.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from gateway.api.common import idempotency_key
from gateway.api.fields import Label40, Label64, Locale, OtpCode
from gateway.api.routing import Call
from gateway.otp.service import OtpRequest, OtpService, OtpState
from gateway.services import Services

__all__ = [
    "OtpSendAnswer",
    "OtpSendRequest",
    "OtpStatus",
    "OtpVerifyAnswer",
    "OtpVerifyRequest",
    "otp_status",
    "send_otp",
    "verify_otp",
]

Purpose = Label64
"""Free text naming what the code is for (``login``, ``signup``, ``reset``, …)."""
Number = Annotated[str, msgspec.Meta(min_length=3, max_length=32)]


class OtpSendRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v1/otp/send``."""

    to: Number
    purpose: Purpose
    locale: Locale = "en"
    expires_in_seconds: Annotated[int, msgspec.Meta(ge=30, le=600)] = 300
    code_length: Annotated[int, msgspec.Meta(ge=4, le=8)] = 6
    app_name: Label40 | None = None
    template: Annotated[str, msgspec.Meta(min_length=1, max_length=300)] | None = None
    device_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    sim_slot: Annotated[int, msgspec.Meta(ge=0, le=3)] | None = None


class OtpSendAnswer(msgspec.Struct, kw_only=True):
    """The contract's answer plus the SMS's request id, expiry, resolved locale and encoding."""

    ok: bool = True
    otp_id: str
    status: Literal["sent"] = "sent"
    expires_in_seconds: int
    request_id: str
    expires_at: datetime
    locale: str
    encoding: str
    segments: int


class OtpVerifyRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v1/otp/verify``: ``otp_id``, or ``to`` and ``purpose`` for the latest code."""

    code: OtpCode
    otp_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    to: Number | None = None
    purpose: Purpose | None = None

    def __post_init__(self) -> None:
        if self.otp_id is None and (self.to is None or self.purpose is None):
            raise ValueError("give otp_id, or both to and purpose")
        if self.otp_id is not None and (self.to is not None or self.purpose is not None):
            raise ValueError("give otp_id, or to and purpose, not both")


class OtpVerifyAnswer(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``success``, ``failed`` (with ``reason``) or ``expired``, and the attempts left."""

    ok: bool  # no default, so ``omit_defaults`` (meant for ``reason``) keeps it
    otp_id: str
    status: Literal["success", "failed", "expired"]
    attempts_left: int
    reason: str | None = None


class OtpSms(msgspec.Struct, kw_only=True):
    """The delivery state of the SMS carrying the code."""

    request_id: str
    status: str
    failure_reason: str | None
    device_id: str | None
    sent_at: datetime | None
    delivered_at: datetime | None


class OtpStatus(msgspec.Struct, kw_only=True):
    """``GET /v1/otp/{otp_id}``: the code's state and its SMS's, never the code."""

    ok: bool = True
    otp_id: str
    status: OtpState
    to: str
    purpose: str
    locale: str
    code_length: int
    attempts_used: int
    attempts_left: int
    max_attempts: int
    created_at: datetime
    expires_at: datetime
    verified_at: datetime | None
    sms: OtpSms


def otp_service(svc: Services) -> OtpService:
    """The OTP service over the gateway's pool, pipeline and secret (cheap; built per call)."""
    return OtpService(
        svc.pool,
        svc.pipeline,
        svc.secret,
        max_queue=svc.settings.max_queue_per_account,
        now=svc.pipeline.now,
        caps=svc.caps,
        verifier=svc.otp_verifies,
        sender=svc.otp_sends,
    )


async def send_otp(call: Call[OtpSendRequest, None]) -> OtpSendAnswer:
    """Generate a code, store it hashed and its SMS sealed, queue the SMS at OTP priority."""
    assert call.principal is not None
    spec = call.body
    key = idempotency_key(call)
    sent = await otp_service(call.services).send(
        call.principal.account,
        OtpRequest(
            to=spec.to,
            purpose=spec.purpose,
            locale=spec.locale,
            expires_in_seconds=spec.expires_in_seconds,
            code_length=spec.code_length,
            app_name=spec.app_name,
            template=spec.template,
            device_id=spec.device_id,
            sim_slot=spec.sim_slot,
        ),
        idempotency_key=key,
        request_body=call.raw_body,
    )
    return OtpSendAnswer(
        otp_id=sent.otp_id,
        expires_in_seconds=sent.expires_in_seconds,
        request_id=sent.request_id,
        expires_at=sent.expires_at,
        locale=sent.locale,
        encoding=sent.encoding,
        segments=sent.segments,
    )


async def verify_otp(call: Call[OtpVerifyRequest, None]) -> OtpVerifyAnswer:
    """Check a code: ``success`` once, ``failed`` with a reason, or ``expired``."""
    assert call.principal is not None
    spec = call.body
    verdict = await otp_service(call.services).verify(
        call.principal.account, spec.code, otp_id=spec.otp_id, to=spec.to, purpose=spec.purpose
    )
    return OtpVerifyAnswer(
        ok=True,
        otp_id=verdict.otp_id,
        status=verdict.status,
        attempts_left=verdict.attempts_left,
        reason=verdict.reason,
    )


async def otp_status(call: Call[None, None]) -> OtpStatus:
    """The code's state, attempts, expiry and its SMS's delivery state."""
    assert call.principal is not None
    service = otp_service(call.services)
    row = await service.status(call.principal.account, call.path["otp_id"])
    return OtpStatus(
        otp_id=row.id,
        status=service.effective_status(row),
        to=row.to_number,
        purpose=row.purpose,
        locale=row.locale,
        code_length=row.code_length,
        attempts_used=row.attempts_used,
        attempts_left=max(0, row.max_attempts - row.attempts_used),
        max_attempts=row.max_attempts,
        created_at=row.created_at,
        expires_at=row.expires_at,
        verified_at=row.verified_at,
        sms=OtpSms(
            request_id=row.message_id,
            status=row.sms_status,
            failure_reason=row.sms_failure_reason,
            device_id=row.sms_device_id,
            sent_at=row.sms_sent_at,
            delivered_at=row.sms_delivered_at,
        ),
    )
