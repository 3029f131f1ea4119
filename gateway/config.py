"""The one settings object, built once from the environment and CLI flags and passed down.

Every knob is a ``RELAYGATE_*`` environment variable (plus ``DATABASE_URL``); CLI flags
override the environment. Nothing else in the code reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Settings", "SettingsError"]


class SettingsError(ValueError):
    """An environment variable or flag has a value that cannot be used."""


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"not a boolean: {value!r}")


def _address_list(value: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingsError(f"not an IP address or network: {item!r}") from None
    return items


def _item_list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _word_list(value: str) -> tuple[str, ...]:
    """``"stop, стоп"`` → ``("STOP", "СТОП")``."""
    return tuple(word.strip().upper() for word in value.split(",") if word.strip())


def _seconds_list(value: str) -> tuple[float, ...]:
    items = tuple(float(v) for v in value.split(",") if v.strip())
    if not items or any(v < 0 for v in items):
        raise SettingsError(f"not a list of non-negative seconds: {value!r}")
    return items


@dataclass(frozen=True, slots=True)
class Settings:
    """Process-wide configuration. Field docs name the environment variable that sets them."""

    host: str = "127.0.0.1"
    """RELAYGATE_HOST: address the HTTP API and the relay listener bind to."""
    http_port: int = 8080
    """RELAYGATE_HTTP_PORT: HTTP API port (0 picks a free port)."""
    relay_port: int = 8081
    """RELAYGATE_RELAY_PORT: relay WebSocket port (0 picks a free port)."""
    data_dir: Path = field(default_factory=lambda: Path(".relaygate"))
    """RELAYGATE_DATA_DIR: embedded PostgreSQL and the server secret live here."""
    database_url: str | None = None
    """DATABASE_URL: use this PostgreSQL instead of the embedded one."""
    public_url: str | None = None
    """RELAYGATE_PUBLIC_URL: base URL customers and phones use to reach the API
    (default http://HOST:HTTP_PORT/api)."""
    relay_public_url: str | None = None
    """RELAYGATE_RELAY_PUBLIC_URL: WebSocket URL handed to paired phones (default ws://HOST:RELAY_PORT/relay/v1)."""
    log_format: str = "auto"
    """RELAYGATE_LOG_FORMAT: json, console, or auto (console when stdout is a terminal)."""
    log_level: str = "info"
    """RELAYGATE_LOG_LEVEL: debug, info, warning, error."""
    max_body_bytes: int = 256 * 1024
    """RELAYGATE_MAX_BODY_BYTES: request bodies larger than this are refused with 413."""
    max_import_bytes: int = 20 * 1024 * 1024
    """RELAYGATE_MAX_IMPORT_BYTES: the CSV body of ``POST /v1/recipients/import`` (its own limit:
    100,000 rows do not fit in MAX_BODY_BYTES)."""
    api_rate_per_second: float = 500.0
    """RELAYGATE_API_RATE: sustained API requests per second per access token."""
    api_rate_burst: int = 1000
    """RELAYGATE_API_BURST: API request burst per account."""
    heartbeat_interval: float = 30.0
    """RELAYGATE_HEARTBEAT_INTERVAL: seconds between relay heartbeats (offline after 2.5x without a frame)."""
    relay_ping_interval: float = 20.0
    """RELAYGATE_RELAY_PING_INTERVAL: seconds between WebSocket pings to each relay socket; a socket
    whose ping is still unanswered one interval later is dropped."""
    shutdown_timeout: float = 10.0
    """RELAYGATE_SHUTDOWN_TIMEOUT: seconds to wait for in-flight work before cancelling it on shutdown."""
    secret_key: str | None = None
    """RELAYGATE_SECRET_KEY: server secret for keyed hashes (default: generated into DATA_DIR/secret.key)."""
    webhook_allow_private: bool = False
    """RELAYGATE_WEBHOOK_ALLOW_PRIVATE: allow webhook URLs on loopback/private networks."""
    webhook_schedule: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    """RELAYGATE_WEBHOOK_SCHEDULE: seconds before each attempt (comma-separated; ±10 % jitter)."""
    webhook_timeout: float = 15.0
    """RELAYGATE_WEBHOOK_TIMEOUT: seconds per webhook request."""
    webhook_concurrency: int = 32
    """RELAYGATE_WEBHOOK_CONCURRENCY: webhook requests in flight at once (per endpoint: 4)."""
    db_pool_size: int = 20
    """RELAYGATE_DB_POOL_SIZE: maximum PostgreSQL connections held by the gateway."""
    mobile_keepalive: float = 15.0
    """RELAYGATE_MOBILE_KEEPALIVE: seconds between ``:keepalive`` comments on an SMSGate phone's event stream."""
    mobile_offline_grace: float = 30.0
    """RELAYGATE_MOBILE_OFFLINE_GRACE: seconds an SMSGate phone stays online after its last event stream closed."""
    mobile_streams_per_device: int = 2
    """RELAYGATE_MOBILE_STREAMS_PER_DEVICE: open event streams per phone (a newer one closes the oldest)."""
    mobile_streams_max: int = 2000
    """RELAYGATE_MOBILE_STREAMS_MAX: open event streams over all phones (more get 503)."""
    mobile_registration_secrets: tuple[str, ...] = ()
    """RELAYGATE_MOBILE_REGISTRATION_SECRETS: ``acc_…=secret`` pairs (comma-separated): an SMSGate
    app whose "Private token" is that secret registers into that account without a pairing code."""
    mobile_ping_interval: int = 300
    """RELAYGATE_MOBILE_PING_INTERVAL: seconds between the ``system:ping`` telemetry webhooks SMSGate phones are told to send."""
    inbound_opt_out_words: tuple[str, ...] = (
        "TOXTAT",
        "TO'XTAT",
        "СТОП",
        "ОТПИСАТЬСЯ",
        "ОТПИСКА",
        "বন্ধ",
        "বাতিল",
    )
    """RELAYGATE_INBOUND_OPT_OUT_WORDS: local opt-out words besides STOP, UNSUBSCRIBE, STOPALL, END,
    CANCEL, QUIT (comma-separated; defaults for uz, ru, bn)."""
    inbound_opt_in_words: tuple[str, ...] = ("BOSHLASH", "СТАРТ", "শুরু")  # noqa: RUF001
    """RELAYGATE_INBOUND_OPT_IN_WORDS: local opt-in words besides START (comma-separated)."""
    pair_rate_per_second: float = 0.5
    """RELAYGATE_PAIR_RATE: pairing attempts per second per client address (unauthenticated route)."""
    pair_burst: int = 30
    """RELAYGATE_PAIR_BURST: pairing attempt burst per client address."""
    max_queue_per_account: int = 100_000
    """RELAYGATE_MAX_QUEUE: queued messages per account before sends answer queue_blocked."""
    max_queue_age: float = 0.0
    """RELAYGATE_MAX_QUEUE_AGE: seconds the oldest queued message of an account may have waited
    before its sends answer queue_blocked (``stale_queue``); 0: no such policy."""
    recipient_hourly_limit: int = 60
    """RELAYGATE_RECIPIENT_HOURLY_LIMIT: messages an account may send to one number in any rolling
    hour unless the account sets its own (anti-abuse); 0: no such cap."""
    max_attempts: int = 3
    """RELAYGATE_MAX_ATTEMPTS: retryable relay failures after which a message fails for good
    (hand-overs ended by a reconnect do not count)."""
    reclaim_grace: float = 30.0
    """RELAYGATE_RECLAIM_GRACE: after a restart, seconds a dispatched-but-unacknowledged message
    waits for its original relay (which de-duplicates) before any relay may take it."""
    list_rate: float = 200.0
    """RELAYGATE_LIST_RATE: list-send items per second this gateway takes into its queue, over
    every batch, so that a big list leaves room for transactional traffic."""
    idempotency_ttl_hours: float = 24.0
    """RELAYGATE_IDEMPOTENCY_TTL_HOURS: how long Idempotency-Key answers are kept (at least)."""
    telemetry_flush_interval: float = 5.0
    """RELAYGATE_TELEMETRY_FLUSH_INTERVAL: seconds between batched writes of relay telemetry."""
    trusted_proxies: tuple[str, ...] = ()
    """RELAYGATE_TRUSTED_PROXIES: addresses or networks of reverse proxies whose X-Forwarded-For
    and X-Forwarded-Proto are believed (comma-separated; default none: the socket's peer is the
    client, so a client cannot pick its own address for the per-address limits)."""
    device_event_debounce: float = 10.0
    """RELAYGATE_DEVICE_EVENT_DEBOUNCE: ``device.offline`` is written only if the relay has not
    come back within this many seconds (and then the matching ``device.online`` is not written
    either); 0 writes both at once."""
    # --- dashboard (gateway/dashboard) ---
    dashboard_idle_timeout: float = 1800.0
    """RELAYGATE_DASHBOARD_IDLE_TIMEOUT: seconds without a request after which a dashboard
    session ends (the operator signs in again)."""
    dashboard_session_max_age: float = 12 * 3600.0
    """RELAYGATE_DASHBOARD_SESSION_MAX_AGE: seconds a dashboard session lasts at most, however busy."""
    dashboard_secure_cookie: bool = False
    """RELAYGATE_DASHBOARD_SECURE_COOKIE: mark the session cookie ``Secure`` even when the request
    arrived over plain HTTP (behind a TLS proxy that is not in RELAYGATE_TRUSTED_PROXIES); over
    HTTPS it is always ``Secure``."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``env`` (default ``os.environ``), then ``overrides`` that are not None."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, variable, kind in _ENV:
            raw = source.get(variable)
            if raw is None or raw == "":
                continue
            try:
                values[name] = kind(raw)
            except ValueError as exc:
                raise SettingsError(f"{variable}: {exc}") from exc
        kinds = {name: kind for name, _, kind in _ENV}
        for name, value in overrides.items():
            if value is None:
                continue
            if isinstance(value, str) and kinds.get(name, str) is not str:
                try:  # a CLI flag arrives as text, like the environment
                    value = kinds[name](value)
                except ValueError as exc:
                    raise SettingsError(f"--{name.replace('_', '-')}: {exc}") from exc
            values[name] = value
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse values that cannot work, with the variable's name in the message."""
        for port_name in ("http_port", "relay_port"):
            port = getattr(self, port_name)
            if not 0 <= port <= 65535:
                raise SettingsError(f"{port_name} must be 0..65535, got {port}")
        if self.log_format not in {"auto", "json", "console"}:
            raise SettingsError(f"log_format must be auto, json or console, got {self.log_format!r}")
        if self.max_body_bytes < 1024:
            raise SettingsError("max_body_bytes must be at least 1024")
        if self.max_import_bytes < 1024:
            raise SettingsError("max_import_bytes must be at least 1024")
        if self.heartbeat_interval <= 0:
            raise SettingsError("heartbeat_interval must be positive")
        if self.relay_ping_interval <= 0:
            raise SettingsError("relay_ping_interval must be positive")
        for pair in self.mobile_registration_secrets:
            account, _, secret = pair.partition("=")
            if not account.startswith("acc_") or len(secret) < 16:
                raise SettingsError(
                    "mobile_registration_secrets: each item is acc_…=<secret of at least 16 characters>"
                )
        if not 0 < self.mobile_keepalive <= 15:
            raise SettingsError("mobile_keepalive must be in (0, 15] seconds")
        if self.mobile_offline_grace < 0 or self.mobile_streams_per_device < 1 or self.mobile_streams_max < 1:
            raise SettingsError("mobile_offline_grace must be >= 0 and the mobile stream limits >= 1")
        if self.device_event_debounce < 0:
            raise SettingsError("device_event_debounce must not be negative")
        if self.max_queue_age < 0 or self.recipient_hourly_limit < 0:
            raise SettingsError("max_queue_age and recipient_hourly_limit must not be negative")
        if self.dashboard_idle_timeout <= 0 or self.dashboard_session_max_age <= 0:
            raise SettingsError("dashboard_idle_timeout and dashboard_session_max_age must be positive")
        if self.list_rate <= 0:
            raise SettingsError("list_rate must be positive")

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (settings are frozen)."""
        return dataclasses.replace(self, **changes)

    def api_base_url(self, http_port: int | None = None) -> str:
        """The base URL of the API, ending in ``/api`` (routes are ``/v1/...`` under it)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{_url_host(self.host)}:{http_port or self.http_port}/api"

    def relay_ws_url(self, relay_port: int | None = None) -> str:
        """The WebSocket URL phones connect to."""
        if self.relay_public_url:
            return self.relay_public_url
        return f"ws://{_url_host(self.host)}:{relay_port or self.relay_port}/relay/v1"


def _url_host(host: str) -> str:
    if host in {"0.0.0.0", "::", ""}:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


_ENV: list[tuple[str, str, Any]] = [
    ("host", "RELAYGATE_HOST", str),
    ("http_port", "RELAYGATE_HTTP_PORT", int),
    ("relay_port", "RELAYGATE_RELAY_PORT", int),
    ("data_dir", "RELAYGATE_DATA_DIR", Path),
    ("database_url", "DATABASE_URL", str),
    ("public_url", "RELAYGATE_PUBLIC_URL", str),
    ("relay_public_url", "RELAYGATE_RELAY_PUBLIC_URL", str),
    ("log_format", "RELAYGATE_LOG_FORMAT", str),
    ("log_level", "RELAYGATE_LOG_LEVEL", str),
    ("max_body_bytes", "RELAYGATE_MAX_BODY_BYTES", int),
    ("max_import_bytes", "RELAYGATE_MAX_IMPORT_BYTES", int),
    ("api_rate_per_second", "RELAYGATE_API_RATE", float),
    ("api_rate_burst", "RELAYGATE_API_BURST", int),
    ("heartbeat_interval", "RELAYGATE_HEARTBEAT_INTERVAL", float),
    ("relay_ping_interval", "RELAYGATE_RELAY_PING_INTERVAL", float),
    ("shutdown_timeout", "RELAYGATE_SHUTDOWN_TIMEOUT", float),
    ("secret_key", "RELAYGATE_SECRET_KEY", str),
    ("webhook_allow_private", "RELAYGATE_WEBHOOK_ALLOW_PRIVATE", _bool),
    ("webhook_schedule", "RELAYGATE_WEBHOOK_SCHEDULE", _seconds_list),
    ("webhook_timeout", "RELAYGATE_WEBHOOK_TIMEOUT", float),
    ("webhook_concurrency", "RELAYGATE_WEBHOOK_CONCURRENCY", int),
    ("db_pool_size", "RELAYGATE_DB_POOL_SIZE", int),
    ("pair_rate_per_second", "RELAYGATE_PAIR_RATE", float),
    ("pair_burst", "RELAYGATE_PAIR_BURST", int),
    ("max_queue_per_account", "RELAYGATE_MAX_QUEUE", int),
    ("max_queue_age", "RELAYGATE_MAX_QUEUE_AGE", float),
    ("recipient_hourly_limit", "RELAYGATE_RECIPIENT_HOURLY_LIMIT", int),
    ("max_attempts", "RELAYGATE_MAX_ATTEMPTS", int),
    ("reclaim_grace", "RELAYGATE_RECLAIM_GRACE", float),
    ("mobile_keepalive", "RELAYGATE_MOBILE_KEEPALIVE", float),
    ("inbound_opt_out_words", "RELAYGATE_INBOUND_OPT_OUT_WORDS", _word_list),
    ("inbound_opt_in_words", "RELAYGATE_INBOUND_OPT_IN_WORDS", _word_list),
    ("mobile_offline_grace", "RELAYGATE_MOBILE_OFFLINE_GRACE", float),
    ("mobile_streams_per_device", "RELAYGATE_MOBILE_STREAMS_PER_DEVICE", int),
    ("mobile_streams_max", "RELAYGATE_MOBILE_STREAMS_MAX", int),
    ("mobile_ping_interval", "RELAYGATE_MOBILE_PING_INTERVAL", int),
    ("mobile_registration_secrets", "RELAYGATE_MOBILE_REGISTRATION_SECRETS", _item_list),
    ("list_rate", "RELAYGATE_LIST_RATE", float),
    ("idempotency_ttl_hours", "RELAYGATE_IDEMPOTENCY_TTL_HOURS", float),
    ("telemetry_flush_interval", "RELAYGATE_TELEMETRY_FLUSH_INTERVAL", float),
    ("trusted_proxies", "RELAYGATE_TRUSTED_PROXIES", _address_list),
    ("device_event_debounce", "RELAYGATE_DEVICE_EVENT_DEBOUNCE", float),
    ("dashboard_idle_timeout", "RELAYGATE_DASHBOARD_IDLE_TIMEOUT", float),
    ("dashboard_session_max_age", "RELAYGATE_DASHBOARD_SESSION_MAX_AGE", float),
    ("dashboard_secure_cookie", "RELAYGATE_DASHBOARD_SECURE_COOKIE", _bool),
]
