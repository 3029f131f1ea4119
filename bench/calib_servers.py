"""S0 calibration servers, each in its own process: ``python -m bench.calib_servers http|ws PORT``.

* ``http`` — a bare Starlette app (one ``GET /hello`` answering a small JSON) on uvicorn with
  httptools and uvloop, configured like the gateway's HTTP listener.
* ``ws`` — a bare ``websockets`` echo server configured like the gateway's relay listener
  (no compression, 20 s pings).

They show what this machine and these libraries do at all, so the gateway's figures can be
read as ratios. Each prints ``ready`` once listening and runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import uvicorn
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from websockets.asyncio.server import ServerConnection, serve

from bench.sysstat import raise_fd_limit

__all__ = ["main"]


async def _hello(request: Request) -> Response:
    return JSONResponse({"ok": True, "hello": "world"})


async def _echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def _serve_ws(port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with serve(
        _echo, "127.0.0.1", port, compression=None, ping_interval=20, ping_timeout=20, backlog=2048
    ):
        print("ready", flush=True)
        await stop.wait()


def main() -> None:
    """Entry point."""
    raise_fd_limit()
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "http":
        app = Starlette(routes=[Route("/hello", _hello, methods=["GET"])])
        print("ready", flush=True)
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=port,
            http="httptools",
            loop="uvloop",
            ws="none",
            lifespan="off",
            access_log=False,
            log_level="warning",
            backlog=2048,
        )
    else:
        uvloop.run(_serve_ws(port))


if __name__ == "__main__":
    main()
