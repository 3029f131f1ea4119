"""Every launch-readiness check in each of its states (pure functions of the facts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.readiness import (
    Check,
    RelayFacts,
    check_limits,
    check_queue,
    check_relays,
    check_subscription,
    check_token,
    check_webhook,
    ready,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def relay(**kw: object) -> RelayFacts:
    """A healthy online relay unless ``kw`` says otherwise."""
    base: dict[str, object] = dict(
        name="r1", online=True, enabled=True, sim_ready=True, battery=80, charging=False, signal=4,
        per_minute=30, per_day=None,
    )  # fmt: skip
    base.update(kw)
    return RelayFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("scopes", "status"),
    [
        (["account.read"], "fail"),
        (["otp.send"], "warn"),
        (["messages.send", "messages.read"], "warn"),
        (["messages.send", "otp.send", "messages.read"], "pass"),
    ],
)
def test_token(scopes: list[str], status: str) -> None:
    """Sending scopes decide fail/warn/pass."""
    assert check_token(scopes).status == status


@pytest.mark.parametrize(
    ("expires", "status"),
    [
        (None, "pass"),
        (NOW - timedelta(seconds=1), "fail"),
        (NOW + timedelta(days=3), "warn"),
        (NOW + timedelta(days=30), "pass"),
    ],
)
def test_subscription(expires: datetime | None, status: str) -> None:
    """Expired fails, under 7 days warns, otherwise passes."""
    assert check_subscription(expires, NOW).status == status


@pytest.mark.parametrize(
    ("relays", "status"),
    [
        ([], "fail"),
        ([relay(online=False)], "fail"),
        ([relay(sim_ready=False)], "fail"),
        ([relay(enabled=False)], "fail"),
        ([relay(battery=10)], "warn"),
        ([relay(battery=10, charging=True)], "pass"),
        ([relay(signal=1)], "warn"),
        ([relay(), relay(name="r2", online=False)], "pass"),
    ],
)
def test_relays(relays: list[RelayFacts], status: str) -> None:
    """At least one enabled online relay with a ready SIM; weak ones warn."""
    assert check_relays(relays).status == status


@pytest.mark.parametrize(
    ("endpoints", "last", "status"),
    [
        (0, None, "warn"),
        (1, None, "warn"),
        (1, "failed", "warn"),
        (1, "pending", "warn"),
        (2, "succeeded", "pass"),
    ],
)
def test_webhook(endpoints: int, last: str | None, status: str) -> None:
    """Configured and the last test delivered passes; anything else warns."""
    assert check_webhook(endpoints, last).status == status


@pytest.mark.parametrize(
    ("relays", "sent", "status"),
    [
        ([relay(enabled=False)], 0, "fail"),
        ([relay(per_day=100)], 90, "warn"),
        ([relay(per_day=100)], 10, "pass"),
        ([relay(per_minute=1)], 1400, "warn"),
    ],
)
def test_limits(relays: list[RelayFacts], sent: int, status: str) -> None:
    """Daily capacity of enabled relays against the last 24 hours' volume."""
    assert check_limits(relays, sent).status == status


def test_queue_and_ready() -> None:
    """Blocked or full fails, nearly full warns; ready means no fail."""
    assert check_queue(0, 100).status == "pass"
    assert check_queue(85, 100).status == "warn"
    assert check_queue(100, 100).status == "fail"
    assert check_queue(0, 100, "paused").status == "fail"
    assert ready([Check(id="queue", status="warn", message="")])
    assert not ready(
        [Check(id="queue", status="pass", message=""), Check(id="token", status="fail", message="")]
    )
