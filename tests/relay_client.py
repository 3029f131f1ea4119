"""A raw relay client for protocol-level tests: pairs through the API, speaks frames by hand."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.harness import ApiClient

__all__ = ["RawRelay", "pair_relay"]

HELLO: dict[str, Any] = {
    "type": "hello",
    "protocol": 1,
    "app_version": "test-1",
    "model": "Pixel Test",
    "sims": [{"slot": 0, "carrier": "TestTel", "ready": True}],
    "queue_length": 0,
}
HEARTBEAT: dict[str, Any] = {
    "type": "heartbeat",
    "battery": 64,
    "charging": True,
    "signal": 3,
    "network": "wifi",
    "sims": [{"slot": 0, "carrier": "TestTel", "ready": True}],
    "app_version": "test-1",
    "queue_length": 2,
}


async def pair_relay(api: ApiClient, name: str = "Relay Device 1") -> dict[str, Any]:
    """Create a pairing code with ``api`` and spend it like the app does."""
    status, code, _ = await api.post("/v1/devices/pairing-codes")
    assert status == 201, code
    status, paired, _ = await api.with_token(None).post(
        "/v1/relay/app/pair",
        json={"code": code["code"], "name": name, "model": "Pixel Test", "app_version": "test-1"},
    )
    assert status == 200, paired
    return dict(paired)


class RawRelay:
    """One hand-driven relay socket."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def connect(
        cls, url: str, token: str, *, hello: bool = True, subprotocols: tuple[str, ...] = ("relaygate.v1",)
    ) -> RawRelay:
        """Open the socket offering ``subprotocols`` (and say hello, expecting welcome)."""
        ws = await connect(
            url,
            additional_headers={"Authorization": f"Bearer {token}"},
            subprotocols=list(subprotocols),  # type: ignore[arg-type]
            compression=None,
            max_size=None,
        )
        relay = cls(ws)
        if hello:
            await relay.send(HELLO)
            welcome = await relay.recv()
            assert welcome["type"] == "welcome", welcome
        return relay

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        """Send a frame (dicts as JSON text, strings and bytes as they are)."""
        await self.ws.send(json.dumps(frame) if isinstance(frame, dict) else frame)

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame, decoded."""
        data = await asyncio.wait_for(self.ws.recv(), timeout)
        frame: dict[str, Any] = json.loads(data)
        return frame

    async def closed(self, timeout: float = 5.0) -> tuple[int | None, str]:
        """Wait for the gateway to close the socket; return (code, reason)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        except Exception:
            pass
        await asyncio.wait_for(self.ws.wait_closed(), timeout)
        return self.ws.close_code, self.ws.close_reason or ""

    def kill(self) -> None:
        """Drop the TCP connection without a close frame (a phone losing its network)."""
        self.ws.transport.abort()

    async def close(self) -> None:
        """Close normally."""
        await self.ws.close()
