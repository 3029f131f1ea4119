"""SIM selection through the real server: a relay's SIM policy and per-SIM daily limits set
with PATCH /v1/devices decide the sim_slot of the send frames, and GET /v1/devices shows the
policy, the limits and each SIM's use; bad settings are refused."""

from __future__ import annotations

from typing import Any

from tests.harness import ApiClient, RunningGateway
from tests.relay_client import HELLO, RawRelay, pair_relay

TWO_SIMS = {
    **HELLO,
    "sims": [
        {"slot": 0, "carrier": "TestTel", "ready": True},
        {"slot": 1, "carrier": "OtherTel", "ready": True},
    ],
}


async def device(api: ApiClient, device_id: str) -> dict[str, Any]:
    """The relay as GET /v1/devices shows it."""
    _, page, _ = await api.get("/v1/devices")
    return next(d for d in page["devices"] if d["id"] == device_id)


async def test_round_robin_with_a_per_sim_limit(api: ApiClient, gateway: RunningGateway) -> None:
    """round_robin over two SIMs with SIM 0 limited to one a day: the frames name SIM 0, then
    SIM 1 twice; the devices API shows the policy, the limit and each SIM's count."""
    paired = await pair_relay(api)
    device_id = paired["device_id"]
    status, body, _ = await api.request(
        "PATCH", f"/v1/devices/{device_id}", json={"sim_policy": "round_robin", "sim_limits": {"0": 1}}
    )
    assert status == 200, body
    assert body["device"]["sim_policy"] == "round_robin" and body["device"]["limits"]["sim_per_day"] == {
        "0": 1
    }
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"], hello=False)
    try:
        await relay.send(TWO_SIMS)
        assert (await relay.recv())["type"] == "welcome"
        for n in range(3):
            status, _, _ = await api.post("/v1/sms/send", json={"to": "+998901234567", "message": f"m{n}"})
            assert status == 200
        frames = [await relay.recv() for _ in range(3)]
        assert [f["type"] for f in frames] == ["send"] * 3
        assert [f["sim_slot"] for f in frames] == [0, 1, 1]
        shown = await device(api, device_id)
        sims = {s["slot"]: s for s in shown["sims"]}
        assert sims[0]["per_day"] == 1 and sims[0]["sent_last_day"] == 1
        assert sims[1]["per_day"] is None and sims[1]["sent_last_day"] == 2
        assert sims[1]["carrier"] == "OtherTel" and sims[1]["ready"] is True
    finally:
        await relay.close()


async def test_sim_settings_are_checked_and_cleared(api: ApiClient) -> None:
    """Unknown policies, slots outside 0-3 and limits below 1 are 422 and change nothing; an
    empty map clears the limits; a new relay has the default policy."""
    device_id = (await pair_relay(api))["device_id"]
    assert (await device(api, device_id))["sim_policy"] == "default"
    for bad in (
        {"sim_policy": "random"},
        {"sim_limits": {"4": 10}},
        {"sim_limits": {"0": 0}},
        {"sim_limits": [1]},
    ):
        status, body, _ = await api.request("PATCH", f"/v1/devices/{device_id}", json=bad)
        assert status == 422 and body["error"]["code"] == "validation_error", (bad, body)
    status, body, _ = await api.request(
        "PATCH", f"/v1/devices/{device_id}", json={"sim_limits": {"1": 300}, "sim_policy": "least_used"}
    )
    assert status == 200 and body["device"]["limits"]["sim_per_day"] == {"1": 300}
    status, body, _ = await api.request("PATCH", f"/v1/devices/{device_id}", json={"sim_limits": {}})
    assert status == 200 and body["device"]["limits"]["sim_per_day"] == {}
    assert body["device"]["sim_policy"] == "least_used"
