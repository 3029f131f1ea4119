"""The one error type of the API and the one JSON shape every failure takes.

    {"ok": false, "error": {"code": "...", "message": "...", "details": {...}}}

Handlers raise :class:`ApiError`; the app's exception handlers turn it (and Starlette's own
404/405, and any unexpected exception) into that shape. No stack trace ever reaches a client.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["STATUS_BY_CODE", "ApiError", "ErrorBody", "ErrorEnvelope", "error_body"]

STATUS_BY_CODE: dict[str, int] = {
    "unauthorized": 401,
    "subscription_expired": 402,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "payload_too_large": 413,
    "validation_error": 422,
    "invalid_device": 422,
    "rate_limited": 429,
    "internal": 500,
    "not_implemented": 501,
    "queue_blocked": 503,
    "unavailable": 503,
}


class ErrorBody(msgspec.Struct, kw_only=True):
    """What went wrong: a stable machine code, a human message, and structured details."""

    code: str
    message: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class ErrorEnvelope(msgspec.Struct, kw_only=True):
    """The response body of every failed request."""

    ok: bool = False
    error: ErrorBody


class ApiError(Exception):
    """A failure to report to the client. ``code`` decides the HTTP status."""

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        if code not in STATUS_BY_CODE:  # pragma: no cover - programming error
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    @property
    def status(self) -> int:
        """The HTTP status this error is sent with."""
        return STATUS_BY_CODE[self.code]

    @classmethod
    def rate_limited(cls, retry_after: float, message: str = "too many requests", **details: Any) -> ApiError:
        """A 429 with ``Retry-After`` in whole seconds (at least 1); ``details`` (e.g. ``reason``,
        naming the limit hit) join ``retry_after_seconds``."""
        seconds = max(1, int(retry_after + 0.999))
        return cls(
            "rate_limited",
            message,
            {"retry_after_seconds": seconds, **details},
            headers={"Retry-After": str(seconds)},
        )


def error_body(error: ApiError) -> bytes:
    """The encoded JSON body for ``error``."""
    return msgspec.json.encode(
        ErrorEnvelope(error=ErrorBody(code=error.code, message=error.message, details=error.details))
    )
