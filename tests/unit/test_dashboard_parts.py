"""Pure parts of the dashboard: the messages-per-minute chart and the session cookie's
signature check (a forged cookie is refused without a database query)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from gateway.dashboard.chart import per_minute, svg_chart
from gateway.dashboard.sessions import _mac, _session_id
from gateway.secret import ServerSecret


def test_per_minute_buckets_each_timestamp_in_its_minute() -> None:
    """sent/delivered/failed times land in their minute of the last hour; older ones are left out."""
    now = datetime(2026, 3, 14, 12, 30, 30, tzinfo=UTC)
    messages: list[Any] = [
        SimpleNamespace(sent_at=now, delivered_at=now, failed_at=None),
        SimpleNamespace(sent_at=now - timedelta(minutes=59), delivered_at=None, failed_at=None),
        SimpleNamespace(
            sent_at=now - timedelta(minutes=61), delivered_at=None, failed_at=now - timedelta(seconds=40)
        ),
    ]
    minutes = per_minute(messages, now)
    assert minutes.counts["sent"][-1] == 1 and minutes.counts["sent"][0] == 1 and minutes.total("sent") == 2
    assert minutes.total("delivered") == 1 and minutes.counts["failed"][-2] == 1
    svg = str(svg_chart(minutes, "Chart <1>", {"sent": "Sent"}))
    assert svg.startswith("<svg") and svg.count("<polyline") == 3 and "Chart &lt;1&gt;" in svg


def test_forged_or_truncated_session_cookies_are_refused() -> None:
    """Only a cookie whose HMAC matches under the server secret names a session."""
    svc: Any = SimpleNamespace(secret=ServerSecret(b"k" * 32))
    other: Any = SimpleNamespace(secret=ServerSecret(b"o" * 32))
    sid = "A" * 43
    good = f"{sid}.{_mac(svc, 'session', sid)}"
    assert _session_id(svc, good) == sid
    assert _session_id(other, good) is None
    for bad in ("", sid, good[:-1], f"{sid}.", f".{_mac(svc, 'session', sid)}", "é" * 10, good + "x" * 300):
        assert _session_id(svc, bad) is None, bad
    assert _session_id(svc, f"{sid}.{_mac(svc, 'csrf', sid)}") is None  # a CSRF token is no cookie
