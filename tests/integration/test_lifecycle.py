"""The gateway's lifecycle: uvicorn's ``Server.serve`` on the pre-bound socket, run by the
runtime in its documented shutdown order (see gateway/runtime.py)."""

from __future__ import annotations

import asyncio
import json
import signal

import asyncpg

from tests.harness import eventually, make_account, start_gateway

TO = "+998901234567"


async def _refused(port: int) -> bool:
    """True once nothing listens on ``port`` any more: the connect is refused, or reset when it
    reached the accept queue of a listener that closed before taking it."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    writer.close()
    return False


async def test_request_in_flight_at_shutdown_is_answered_and_committed(database_url: str) -> None:
    """A request whose body is still arriving when the shutdown begins gets its answer (with
    ``Connection: close``) and its message is committed, while new connections are refused."""
    _, token = await make_account(database_url)
    running = await start_gateway(database_url)
    port = running.gateway.http_port
    body = json.dumps({"to": TO, "message": "in flight"}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /api/v1/sms/send HTTP/1.1\r\nHost: gw\r\n"
        + f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode()
    )
    # 100 Continue comes when the handler first asks for the body: the request is in flight.
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10) == b"HTTP/1.1 100 Continue\r\n\r\n"

    stopping = asyncio.create_task(running.stop())
    await eventually(lambda: _refused(port), timeout=5, what="the HTTP listener closed")
    assert not stopping.done()
    writer.write(body)
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode().lower()
    answer = json.loads(await asyncio.wait_for(reader.read(), 10))
    writer.close()
    await asyncio.wait_for(stopping, 15)

    assert head.startswith("http/1.1 200") and "connection: close" in head, head
    assert answer["status"] == "queued", answer
    conn = await asyncpg.connect(database_url)
    try:
        status = await conn.fetchval("SELECT status FROM messages WHERE id = $1", answer["request_id"])
    finally:
        await conn.close()
    assert status == "queued"


async def test_serving_leaves_the_process_signal_handlers_alone(database_url: str) -> None:
    """uvicorn's serve() does not replace SIGINT/SIGTERM handlers: the gateway's caller owns them
    (``relaygate serve`` stops in order on them; a test run stays interruptible)."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    running = await start_gateway(database_url)
    try:
        await eventually(lambda: _answers(running.gateway.http_port), what="the HTTP server serves")
        assert {sig: signal.getsignal(sig) for sig in before} == before
        assert "http.serve" in running.gateway.supervisor.names
    finally:
        await running.stop()
    assert {sig: signal.getsignal(sig) for sig in before} == before


async def _answers(port: int) -> bool:
    """True once a request to ``port`` gets an HTTP answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        return (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 ")
    finally:
        writer.close()
