"""Protocol versions and their negotiation: the one place that says which version has what.

A relay offers the versions it speaks as WebSocket subprotocols (``Sec-WebSocket-Protocol``);
the gateway picks the newest one it also speaks (:func:`negotiate`) and the session runs under
it. Minor versions are backward compatible: ``relaygate.v1.1`` is ``relaygate.v1`` plus frames
a v1 relay never receives (``cancel``, and ``inbound_ack`` for its ``inbound`` frames) and may
never send (``cancel_result``, ``inbound``). A relay that offers only ``relaygate.v1`` gets a
v1 session and the gateway never sends it a v1.1 frame (:class:`~protocol.session.RelaySession`
refuses to).

Adding a version: a member of :class:`ProtocolVersion` (the value orders them), its name in
:data:`SUBPROTOCOLS` (newest first), the features it introduces as ``*_SINCE`` constants, and
its section in ``docs/protocol.md``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Final

__all__ = [
    "CANCEL_SINCE",
    "INBOUND_SINCE",
    "SUBPROTOCOLS",
    "ProtocolVersion",
    "negotiate",
]


class ProtocolVersion(enum.IntEnum):
    """A protocol version; later versions compare greater."""

    V1 = 10
    """``relaygate.v1``: hello/welcome, send/ack, report/report_ack, heartbeat, error."""
    V1_1 = 11
    """``relaygate.v1.1``: v1 plus ``cancel``/``cancel_result`` and ``inbound``/``inbound_ack``."""

    @property
    def subprotocol(self) -> str:
        """The ``Sec-WebSocket-Protocol`` value that selects this version."""
        return _SUBPROTOCOL_OF[self]

    @property
    def label(self) -> str:
        """``"1"`` or ``"1.1"``, for logs and docs."""
        return self.subprotocol.removeprefix("relaygate.v")

    @classmethod
    def from_subprotocol(cls, name: str | None) -> ProtocolVersion | None:
        """The version a subprotocol name selects; None if it is not one of ours."""
        return _VERSION_OF.get(name or "")


_SUBPROTOCOL_OF: Final = {ProtocolVersion.V1: "relaygate.v1", ProtocolVersion.V1_1: "relaygate.v1.1"}
_VERSION_OF: Final = {name: version for version, name in _SUBPROTOCOL_OF.items()}

SUBPROTOCOLS: Final[tuple[str, ...]] = tuple(v.subprotocol for v in sorted(ProtocolVersion, reverse=True))
"""Every subprotocol the gateway speaks, newest first (its order of preference)."""

CANCEL_SINCE: Final = ProtocolVersion.V1_1
"""First version with ``cancel`` (gateway → relay) and ``cancel_result`` (relay → gateway)."""
INBOUND_SINCE: Final = ProtocolVersion.V1_1
"""First version with ``inbound`` (relay → gateway) and ``inbound_ack`` (gateway → relay)."""


def negotiate(offered: Iterable[str]) -> ProtocolVersion | None:
    """The newest version among the subprotocol names a relay ``offered``; None if none is ours.

    Each item may be one header value holding several comma-separated names."""
    names = {part.strip() for value in offered for part in value.split(",")}
    for version in sorted(ProtocolVersion, reverse=True):
        if version.subprotocol in names:
            return version
    return None
