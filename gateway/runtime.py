"""The running gateway: start-up, supervision and the fixed shutdown order.

Start-up: both listening sockets bound (a taken port fails before anything else) → database
(embedded or ``DATABASE_URL``) → schema → first-run bootstrap → restart recovery (unfinished
messages back into the scheduler) → HTTP server → background tasks → relay listener.

The HTTP side is uvicorn's own ``Server.serve(sockets=[...])`` on the pre-bound socket, run as
the supervised task ``http.serve``; the runtime, not an ASGI lifespan, owns start-up and
shutdown, because its order interleaves the relay side with the HTTP side (uvicorn's lifespan
would run the app's start-up before its listener and the app's shutdown only after the HTTP
drain, with no room for the relay listener). The app therefore runs with ``lifespan="off"``,
and uvicorn's signal handlers are left out: the runtime's caller owns the signals.

While running, the task ``database.watch`` pings PostgreSQL every ``DATABASE_WATCH_INTERVAL``
seconds: it logs ``database.down`` / ``database.up``, stores the relay reports that were parked
while the database was unreachable (their ``report_ack`` goes out then), and — with the embedded
server — restarts the postmaster if it died (``database.embedded_restarted``).

Shutdown (on SIGINT/SIGTERM, or when a supervised task dies), always in this order:

1. stop accepting: close the relay listening socket and tell uvicorn to exit (it closes the
   HTTP listening socket within its 0.1 s tick);
2. close relay sessions with 1001 (going away) so phones reconnect with backoff, end the
   SMSGate phones' and the dashboard's event streams (they reconnect by themselves), and let
   in-flight HTTP requests finish (uvicorn's graceful drain, up to ``shutdown_timeout``;
   idle keep-alive connections are closed at once);
3. stop background tasks (dispatch, writers, flushers): cancelled with a message, then the
   group-commit writers write what they still hold (acks, requeues, and the ``device.offline``
   events still held by the debounce) within ``shutdown_timeout``;
4. close the database pool (everything acknowledged to a client is already committed);
5. the embedded PostgreSQL handle is released when the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import uvicorn

from gateway.access.accounts import create_account
from gateway.access.auth import Authenticator
from gateway.access.ratelimit import KeyedTokenBuckets
from gateway.access.scopes import ALL_SCOPES
from gateway.app import build_app
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import Settings
from gateway.dashboard.live import LiveFeed
from gateway.fleet.hub import RelayHub
from gateway.fleet.inbound import InboundDesk
from gateway.fleet.listener import LISTEN_BACKLOG, RelayListener
from gateway.limits import MAX_IDEMPOTENCY_KEYS_PER_DAY, DailyBudget
from gateway.logs import get_logger
from gateway.metrics import watch_loop_lag
from gateway.otp.writers import send_batcher, verify_batcher
from gateway.secret import load_secret
from gateway.sending.caps import SendCaps
from gateway.sending.pipeline import Pipeline
from gateway.sending.queue_control import QueueControl
from gateway.services import Services
from gateway.tasks import Supervisor
from gateway.webhooks.dispatcher import WebhookDispatcher
from store.accounts import account_count, lock_accounts
from store.database import DATABASE_DOWN, Conn, apply_schema, create_pool
from store.devices import purge_pairing_codes
from store.embedded import embedded_database_url, embedded_server_alive, restart_embedded_server
from store.health import ping
from store.idempotency import purge_answers

__all__ = ["Gateway", "ListenError", "bind_socket", "resolve_database_url"]

log = get_logger("gateway.runtime")

DATABASE_WATCH_INTERVAL = 1.0
"""Seconds between the database watch's pings."""
DATABASE_PING_TIMEOUT = 1.5


async def resolve_database_url(settings: Settings) -> str:
    """``DATABASE_URL`` if set, else the embedded server's URL (started if needed)."""
    if settings.database_url:
        return settings.database_url
    return await asyncio.to_thread(embedded_database_url, settings.data_dir)


class ListenError(RuntimeError):
    """A listener could not bind its address; the message names the setting to change."""


def bind_socket(host: str, port: int, *, setting: str = "the port setting") -> socket.socket:
    """A listening TCP socket (port 0 picks a free one); SO_REUSEADDR so restarts rebind at once.

    Raises :class:`ListenError` naming ``setting`` when the address is taken or not ours.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); another program may use it: "
            f"choose another port with {setting}"
        ) from None
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


HTTP_SERVE_MARGIN = 1.0
"""Seconds ``http.serve`` may take beyond ``shutdown_timeout`` to finish uvicorn's own shutdown
(its 0.1 s tick and pause) before it is cancelled."""


class _HttpServer(uvicorn.Server):
    """uvicorn's server without its signal handlers: the runtime's caller owns SIGINT/SIGTERM
    (``relaygate serve`` installs them on the loop; tests run gateways inside pytest)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Gateway:
    """One gateway process. ``start()`` then ``wait()`` then ``stop()``.

    ``clock`` is the one clock of this gateway: the runtime hands it to every part that reads
    time (see :mod:`gateway.clock`); tests pass one they can move.
    """

    def __init__(
        self, settings: Settings, *, announce: Callable[[str], None] = print, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._announce = announce
        self.supervisor = Supervisor()
        self._stop_requested = asyncio.Event()
        self.pool: asyncpg.Pool[Any] | None = None
        self.services: Services | None = None
        self._http: _HttpServer | None = None
        self._http_sock: socket.socket | None = None
        self._relay_sock: socket.socket | None = None
        self.hub: RelayHub | None = None
        self.pipeline: Pipeline | None = None
        self.webhooks: WebhookDispatcher | None = None
        self.relay_listener: RelayListener | None = None
        self.live: LiveFeed | None = None
        self.database_url = ""

    @property
    def http_port(self) -> int:
        """The bound HTTP port (useful when configured as 0)."""
        assert self._http_sock is not None
        return int(self._http_sock.getsockname()[1])

    @property
    def relay_port(self) -> int:
        """The bound relay port."""
        assert self._relay_sock is not None
        return int(self._relay_sock.getsockname()[1])

    async def start(self) -> None:
        """Bring everything up; raises if any part cannot start."""
        s = self.settings
        self.database_url = await resolve_database_url(s)
        # Both listeners are bound before anything is announced: a taken port fails here, with
        # the setting to change, not after the first token was printed.
        self._http_sock = bind_socket(s.host, s.http_port, setting="RELAYGATE_HTTP_PORT or --http-port")
        self._relay_sock = bind_socket(s.host, s.relay_port, setting="RELAYGATE_RELAY_PORT or --relay-port")
        self.pool = await create_pool(self.database_url, max_size=s.db_pool_size)
        async with self.pool.acquire() as conn:
            version = await apply_schema(conn)
            await self._bootstrap(conn)
        log.info("database.ready", schema_version=version, embedded=not s.database_url)

        self.hub = RelayHub(
            self.pool,
            clock=self.clock,
            flush_interval=s.telemetry_flush_interval,
            event_debounce=s.device_event_debounce,
        )
        secret = load_secret(s.secret_key, s.data_dir)
        self.pipeline = Pipeline(
            self.pool,
            self.hub,
            secret=secret,
            max_attempts=s.max_attempts,
            reclaim_grace=s.reclaim_grace,
            clock=self.clock.time,
            list_rate=s.list_rate,
        )
        await self.pipeline.load()
        queue = QueueControl(
            self.pool, self.pipeline, max_queue=s.max_queue_per_account, max_queue_age=s.max_queue_age
        )
        await queue.load()
        self.webhooks = WebhookDispatcher(
            self.pool,
            self.database_url,
            allow_private=s.webhook_allow_private,
            schedule=s.webhook_schedule,
            timeout=s.webhook_timeout,
            concurrency=s.webhook_concurrency,
            clock=self.clock,
        )
        self.services = Services(
            settings=s,
            pool=self.pool,
            clock=self.clock,
            authenticator=Authenticator(
                self.pool, rate=s.api_rate_per_second, burst=s.api_rate_burst, clock=self.clock
            ),
            started_at=self.clock.monotonic(),
            hub=self.hub,
            pipeline=self.pipeline,
            secret=secret,
            webhooks=self.webhooks,
            pair_limits=KeyedTokenBuckets(s.pair_rate_per_second, s.pair_burst, self.clock.monotonic),
            idempotency_budget=DailyBudget(MAX_IDEMPOTENCY_KEYS_PER_DAY, self.clock.time),
            queue=queue,
            caps=SendCaps(
                self.pool, queue, default_recipient_hour=s.recipient_hourly_limit, clock=self.clock.time
            ),
            http_port=self.http_port,
            relay_port=self.relay_port,
            inbound=InboundDesk(
                self.pool, opt_out_words=s.inbound_opt_out_words, opt_in_words=s.inbound_opt_in_words
            ),
            otp_sends=send_batcher(self.pool),
            otp_verifies=verify_batcher(self.pool, secret),
        )
        app = build_app(self.services)
        live: LiveFeed = app.state.live
        self.live = live
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,
            http="httptools",
            ws="none",
            server_header=False,
            backlog=LISTEN_BACKLOG,
            timeout_graceful_shutdown=int(s.shutdown_timeout),
            # Forwarded headers only from the operator's own proxies (uvicorn trusts 127.0.0.1
            # by default, which let any local client choose its address).
            proxy_headers=bool(s.trusted_proxies),
            forwarded_allow_ips=list(s.trusted_proxies),
        )
        config.load()  # here, so that a configuration uvicorn refuses fails start()
        self._http = _HttpServer(config)
        self.supervisor.spawn("http.serve", self._http.serve(sockets=[self._http_sock]))
        self.supervisor.spawn("messages.accept", self.pipeline.accepts.run())
        self.supervisor.spawn("messages.transitions", self.pipeline.transitions.run())
        for otp_writer in (self.services.otp_sends, self.services.otp_verifies):
            if otp_writer is not None:
                self.supervisor.spawn(otp_writer.name, otp_writer.run())
        self.supervisor.spawn("pipeline.dispatch", self.pipeline.run())
        self.supervisor.spawn("pipeline.holds", self.pipeline.held.run())
        self.supervisor.spawn("idempotency.purge", self._purge_idempotency_keys())
        self.supervisor.spawn("webhooks.dispatch", self.webhooks.run())
        self.relay_listener = RelayListener(
            self.pool,
            self.hub,
            heartbeat_interval=s.heartbeat_interval,
            ping_interval=s.relay_ping_interval,
            inbound=self.services.inbound,
            clock=self.clock,
        )
        await self.relay_listener.start(self._relay_sock)
        self.supervisor.spawn("relay.telemetry", self.hub.run_flusher())
        self.supervisor.spawn("relay.keepalive", self.relay_listener.keepalive.run())
        self.supervisor.spawn("relay.events", self.hub.event_writer.run())
        self.supervisor.spawn("database.watch", self._watch_database())
        self.supervisor.spawn("metrics.loop_lag", watch_loop_lag())
        self.supervisor.spawn("dashboard.live", live.run(self.database_url))
        log.info(
            "gateway.started", http=self.settings.api_base_url(self.http_port), relay_port=self.relay_port
        )

    async def _bootstrap(self, conn: Conn) -> None:
        """On an empty database, create the ``default`` account and show its token once."""
        async with conn.transaction():
            await lock_accounts(conn)
            if await account_count(conn):
                return
            account, token = await create_account(conn, "default")
        base = self.settings.api_base_url()
        self._announce(
            "\n".join(
                [
                    "",
                    "relaygate: first start - created account 'default' "
                    f"({account.id}). Its access token is shown only now:",
                    "",
                    f"    {token}",
                    "",
                    "Try it:",
                    f"    curl -H 'Authorization: Bearer {token}' {base}/v1/account",
                    "",
                    "Lost it? Make a new one (and revoke this one through the API):",
                    f"    relaygate tokens create --account {account.id} --scopes {','.join(ALL_SCOPES)}",
                    "",
                ]
            )
        )

    async def _purge_idempotency_keys(self) -> None:
        """Background task ``idempotency.purge``: hourly, drop Idempotency-Key answers older than
        the retention and pairing codes a day after they expired."""
        assert self.pool is not None
        while True:
            try:
                await purge_answers(self.pool, older_than_seconds=self.settings.idempotency_ttl_hours * 3600)
                await purge_pairing_codes(self.pool, older_than=24 * 3600)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("idempotency.purge_failed", error=repr(exc))
            await asyncio.sleep(3600)

    async def _database_answers(self) -> bool:
        assert self.pool is not None
        try:
            async with asyncio.timeout(DATABASE_PING_TIMEOUT):
                await ping(self.pool)
        except DATABASE_DOWN:
            return False
        return True

    async def _restart_embedded_if_dead(self) -> bool:
        """With the embedded server: if its postmaster is gone, start it again; True if restarted."""
        data_dir = self.settings.data_dir
        if self.settings.database_url:
            return False
        if await asyncio.to_thread(embedded_server_alive, data_dir):
            return False
        log.error("database.embedded_died", data_dir=str(data_dir))
        try:
            url = await asyncio.to_thread(restart_embedded_server, data_dir)
        except Exception as exc:  # e.g. old backends still hold its shared memory: next round
            log.warning("database.embedded_restart_failed", error=repr(exc))
            return False
        if url != self.database_url:  # pragma: no cover - same data folder, same socket
            assert self.pool is not None
            self.pool.set_connect_args(url)
            self.database_url = url
        log.warning("database.embedded_restarted", data_dir=str(data_dir))
        return True

    async def _watch_database(self) -> None:
        """Background task ``database.watch`` (see the module docstring)."""
        assert self.relay_listener is not None
        reports = self.relay_listener.reports
        up = True
        while True:
            await asyncio.sleep(DATABASE_WATCH_INTERVAL)
            ok = await self._database_answers()
            if not ok and await self._restart_embedded_if_dead():
                ok = await self._database_answers()
            if ok != up:
                up = ok
                if ok:
                    log.warning("database.up")
                else:
                    log.error("database.down")
            if ok and reports.parked:
                try:
                    await reports.retry_parked()
                except DATABASE_DOWN as exc:  # down again: next round
                    log.warning("relay.reports_retry_failed", error=repr(exc))

    def request_stop(self) -> None:
        """Ask the gateway to shut down (signal handlers call this)."""
        self._stop_requested.set()

    async def wait(self) -> None:
        """Until a stop is requested or a supervised task dies."""
        stop = asyncio.create_task(self._stop_requested.wait(), name="runtime.wait-stop")
        failed = asyncio.create_task(self.supervisor.failed.wait(), name="runtime.wait-failure")
        await asyncio.wait({stop, failed}, return_when=asyncio.FIRST_COMPLETED)
        for task in (stop, failed):
            task.cancel()

    async def stop(self) -> None:
        """Shut down in the documented order."""
        timeout = self.settings.shutdown_timeout
        log.info("gateway.stopping")
        # 1. stop accepting connections (uvicorn closes its listener and the socket on its
        #    next tick, then drains: step 2 runs beside it)
        if self.relay_listener is not None:
            self.relay_listener.stop_accepting()
        elif self._relay_sock is not None:
            self._relay_sock.close()
        if self._http is not None:
            self._http.should_exit = True
        elif self._http_sock is not None:
            self._http_sock.close()  # start() failed before uvicorn got the socket
        # 2. close relay sessions with 1001, let in-flight HTTP requests finish
        if self.relay_listener is not None:
            await self.relay_listener.close_all()
        if self.live is not None:
            self.live.close()  # open dashboard event streams end; browsers reconnect later
        if self._http is not None:
            await self.supervisor.stop("http.serve", timeout + HTTP_SERVE_MARGIN)
        # 3. background tasks; then write what the group-commit writers still hold (with the
        #    device.offline events the debounce still holds: these relays are gone for now)
        await self.supervisor.cancel_all(timeout)
        if self.hub is not None:
            self.hub.settle_offline_events()
        if self.pipeline is not None and self.hub is not None:
            otp = (self.services.otp_sends, self.services.otp_verifies) if self.services else (None, None)
            writers = (self.pipeline.accepts, self.pipeline.transitions, self.hub.event_writer, *otp)
            for batcher in [b for b in writers if b is not None]:
                try:
                    await asyncio.wait_for(batcher.close(), timeout)
                except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("pipeline.flush_failed", writer=batcher.name, error=repr(exc))
        # 4. last telemetry, then the database pool
        if self.hub is not None and self.pool is not None:
            try:
                await asyncio.wait_for(self.hub.flush_telemetry(), timeout)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("relay.telemetry_flush_failed", error=repr(exc))
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.close(), timeout)
            except TimeoutError:
                self.pool.terminate()
        log.info("gateway.stopped")
