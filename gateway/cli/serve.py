"""``relaygate serve``: run the gateway until SIGINT/SIGTERM, then stop in the documented order."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from gateway.collector import tune_collector
from gateway.config import Settings
from gateway.runtime import Gateway, ListenError

__all__ = ["add_listener_arguments", "serve"]


def add_listener_arguments(parser: argparse.ArgumentParser) -> None:
    """``--host``, ``--http-port``, ``--relay-port`` (``serve`` and ``demo``)."""
    parser.add_argument("--host", help="bind address (RELAYGATE_HOST, default 127.0.0.1)")
    parser.add_argument("--http-port", type=int, help="HTTP API port (RELAYGATE_HTTP_PORT, default 8080)")
    parser.add_argument(
        "--relay-port", type=int, help="relay WebSocket port (RELAYGATE_RELAY_PORT, default 8081)"
    )


async def serve(settings: Settings) -> int:
    """Start the gateway, wait for a signal or a dead task, stop; the exit code."""
    gateway = Gateway(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, gateway.request_stop)
    try:
        await gateway.start()
        tune_collector()
        await gateway.wait()
    except ListenError as exc:
        print(f"relaygate: {exc}", file=sys.stderr)
        return 2
    finally:
        await gateway.stop()
    return 1 if gateway.supervisor.failure is not None else 0
