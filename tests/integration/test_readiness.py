"""``GET /v1/launch/readiness`` through the real server: a new account is not ready; with a
relay online and a delivered test event it is."""

from __future__ import annotations

from typing import Any

from tests.harness import ApiClient, RunningGateway, eventually, make_account
from tests.relay_client import RawRelay, pair_relay
from tests.webhook_receiver import Receiver


def by_id(report: dict[str, Any]) -> dict[str, str]:
    """``{check id: status}``."""
    return {c["id"]: c["status"] for c in report["checks"]}


async def test_readiness_from_new_account_to_ready(
    api: ApiClient, gateway: RunningGateway, database_url: str
) -> None:
    """No relay fails; a relay online and a delivered test event make the account ready."""
    status, report, _ = await api.get("/v1/launch/readiness")
    assert status == 200 and report["ok"] is True and report["ready"] is False
    assert by_id(report) == {
        "token": "pass", "subscription": "pass", "relays_online": "fail", "webhook": "warn",
        "limits": "fail", "queue": "pass",
    }  # fmt: skip
    paired = await pair_relay(api)
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"])
    receiver = Receiver()
    await receiver.start()
    try:
        status, hook, _ = await api.post(
            "/v1/webhooks", json={"url": receiver.url(), "events": ["message.sent"]}
        )
        assert status == 201
        assert (await api.post(f"/v1/webhooks/{hook['webhook']['id']}/test"))[0] == 202

        async def ready() -> dict[str, Any] | None:
            _, report, _ = await api.get("/v1/launch/readiness")
            return dict(report) if report["ready"] and by_id(report)["webhook"] == "pass" else None

        report = await eventually(ready, what="the account ready")
        assert set(by_id(report).values()) == {"pass"}, report
    finally:
        await relay.close()
        await receiver.stop()


async def test_readiness_token_scopes_and_isolation(api: ApiClient, database_url: str) -> None:
    """A read-only token fails the token check; another account's relays do not count."""
    _, reader = await make_account(database_url, "other", scopes=["account.read"])
    status, report, _ = await api.with_token(reader).get("/v1/launch/readiness")
    assert status == 200 and by_id(report)["token"] == "fail" and by_id(report)["relays_online"] == "fail"
    _, no_scope = await make_account(database_url, "third", scopes=["messages.send"])
    status, body, _ = await api.with_token(no_scope).get("/v1/launch/readiness")
    assert status == 403 and body["error"]["details"]["required_scope"] == "account.read"
