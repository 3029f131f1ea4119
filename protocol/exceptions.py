"""Exceptions raised by the relay protocol package.

The tree::

    ProtocolError                 base of everything raised here
    ├── InvalidFrame              a received frame could not be decoded or validated;
    │                             carries the ``error`` code to answer with
    └── ProtocolStateError        the caller asked for something the session's
                                  state does not allow (e.g. send before welcome)

:class:`InvalidFrame` is the peer's fault and is turned into an ``error``
frame by :class:`~protocol.session.RelaySession`; it never escapes
``receive_frame``. :class:`ProtocolStateError` is the *caller's* fault — the
gateway adapter or scheduler misused the session — and is meant to surface.
"""

from __future__ import annotations

from protocol.codes import ErrorCode

__all__ = ["InvalidFrame", "ProtocolError", "ProtocolStateError"]


class ProtocolError(Exception):
    """Base class of all exceptions raised by :mod:`protocol`."""


class InvalidFrame(ProtocolError):
    """A frame was rejected while decoding.

    ``code`` is the value for the ``error`` frame's ``code`` field,
    ``message`` explains which field or rule failed, and ``ref`` is the
    frame's ``id`` when it had a usable one.
    """

    code: ErrorCode
    """Error code to report to the peer."""
    message: str
    """Human-readable reason, already capped in length."""
    ref: str | None
    """The offending frame's ``id``, if any."""

    def __init__(self, code: ErrorCode, message: str, ref: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.ref = ref


class ProtocolStateError(ProtocolError):
    """An operation was attempted in a session state that does not allow it."""
