"""The mobile API under bad input: wrong auth schemes, stale tokens, malformed snapshots,
too many event streams, forged webhooks, other accounts' ids; nothing changes, nothing 5xx."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp
import msgspec

from tests.harness import ApiClient, RunningGateway, eventually, make_account, start_gateway
from tests.mobile_client import RawStream, call, mobile_url, pairing_code, register, signed, snapshot
from tests.relay_client import pair_relay

TO = "+998901234567"


async def test_wrong_auth_schemes_and_codes_are_401(
    session: aiohttp.ClientSession, api: ApiClient, gateway: RunningGateway
) -> None:
    """Registration takes only Code <pairing code>; other routes only the phone's own Bearer token."""
    code = await pairing_code(api)
    body = {"name": "x"}
    for auth in (
        None,
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-secret",
        "Code",
        "Code 0000-0000",
        "Code ZZZZ-ZZZZ",
    ):
        status, answer = await call(session, gateway, "POST", "/device", auth=auth, body=body)
        assert status == 401 and answer["error"]["code"] == "unauthorized", (auth, answer)
    relay = await pair_relay(api)  # a WebSocket relay's token is not a phone's
    for auth in (None, f"Code {code}", f"Bearer {relay['device_token']}", "Bearer rgm_" + "a" * 36, "Bearer"):
        for method, path in (
            ("GET", "/message"),
            ("GET", "/events"),
            ("PATCH", "/device"),
            ("GET", "/settings"),
        ):
            status, answer = await call(session, gateway, method, path, auth=auth, body={"id": "x"})
            assert status == 401, (auth, path, answer)
    status, answer = await call(session, gateway, "POST", "/device", auth=f"Code {code}", body={"name": "ok"})
    assert status == 201 and answer["token"].startswith("rgm_") and answer["login"] == answer["id"]


async def test_stale_token_after_unpair_gets_401_and_stream_ends(
    session: aiohttp.ClientSession, api: ApiClient, gateway: RunningGateway
) -> None:
    """Unpairing ends the phone's stream and its token answers 401 (the app then registers again)."""
    phone = await register(session, gateway, api)
    auth = f"Bearer {phone['token']}"
    assert (await call(session, gateway, "PATCH", "/device", auth=auth, body={"id": phone["id"]}))[0] == 204
    status, answer = await call(session, gateway, "PATCH", "/device", auth=auth, body={"id": "dev_other"})
    assert status == 403, answer
    stream = await RawStream.open(session, gateway, phone["token"])
    assert stream.status == 200
    status, _, _ = await api.request("DELETE", f"/v1/devices/{phone['id']}")
    assert status == 200
    async with asyncio.timeout(5):
        await stream.ended.wait()
    for method, path in (("PATCH", "/device"), ("GET", "/message"), ("GET", "/events"), ("GET", "/webhooks")):
        status, _ = await call(session, gateway, method, path, auth=auth, body={"id": phone["id"]})
        assert status == 401, path


async def test_malformed_snapshots_are_refused_and_unknown_ids_ignored(
    session: aiohttp.ClientSession, api: ApiClient, gateway: RunningGateway
) -> None:
    """Bad report bodies get 422 and change nothing; unknown ids and odd times are accepted (204)."""
    phone = await register(session, gateway, api)
    auth = f"Bearer {phone['token']}"
    bad: list[bytes] = [
        b"{}",
        b"not json",
        b'[{"id": "req_x", "state": "Teleported", "recipients": []}]',
        b'[{"state": "Sent"}]',
        b'[{"id": "req_\\u0000", "state": "Sent"}]',
        msgspec.json.encode([snapshot("req_x", TO, "Sent")] * 101),
        msgspec.json.encode([{"id": "x" * 65, "state": "Sent"}]),
        b"[" * 5000,
    ]
    for data in bad:
        status, answer = await call(session, gateway, "PATCH", "/message", auth=auth, data=data)
        assert status in (413, 422), (data[:40], status, answer)
    fine = [
        snapshot(
            "req_01UNKNOWN000000000000000000", TO, "Delivered", Sent="yesterday", Delivered="9999-99-99"
        ),
        snapshot("someone-elses-id", TO, "Failed", error="x" * 1000),
        {"id": "req_y", "state": "Processed"},
    ]
    status, _ = await call(session, gateway, "PATCH", "/message", auth=auth, body=fine)
    assert status == 204
    status, answer = await call(session, gateway, "GET", "/message?order=sideways", auth=auth)
    assert status == 422
    status, items = await call(session, gateway, "GET", "/message?order=lifo", auth=auth)
    assert status == 200 and items == []


async def test_reports_on_another_accounts_message_change_nothing(
    session: aiohttp.ClientSession, api: ApiClient, gateway: RunningGateway, database_url: str
) -> None:
    """A phone of account B cannot pull, report or cancel account A's messages."""
    mine = await register(session, gateway, api)
    stream = await RawStream.open(session, gateway, mine["token"])
    status, sent, _ = await api.post("/v1/sms/send", json={"to": TO, "message": "a"})
    assert status == 200
    assert await stream.next() == ("MessageEnqueued", None)
    _, other_token = await make_account(database_url, "other")
    other = await register(session, gateway, api.with_token(other_token))
    auth = f"Bearer {other['token']}"
    status, items = await call(session, gateway, "GET", "/message", auth=auth)
    assert status == 200 and items == []
    for state in ("Processed", "Delivered", "Failed", "Cancelled"):
        report = [snapshot(sent["request_id"], TO, state, error="RESULT_ERROR_NO_SERVICE")]
        assert (await call(session, gateway, "PATCH", "/message", auth=auth, body=report))[0] == 204
    _, body, _ = await api.get("/v1/messages/status", params={"request_id": sent["request_id"]})
    assert body["status"] == "dispatched" and body["device_id"] == mine["id"]
    _, listing, _ = await api.with_token(other_token).get("/v1/devices")
    assert [d["id"] for d in listing["devices"]] == [other["id"]]
    await stream.close()


async def test_too_many_event_streams(
    session: aiohttp.ClientSession, database_url: str, account: tuple[str, str]
) -> None:
    """A phone's newer stream replaces its oldest past the per-device bound; past the total, 503."""
    running = await start_gateway(database_url, mobile_streams_per_device=2, mobile_streams_max=3)
    api = ApiClient(session, running.base_url, account[1])
    streams: list[RawStream] = []
    try:
        one = await register(session, running, api)
        two = await register(session, running, api)
        streams = [await RawStream.open(session, running, one["token"]) for _ in range(3)]
        assert [s.status for s in streams] == [200, 200, 200]
        async with asyncio.timeout(5):
            await streams[0].ended.wait()  # replaced by the third
        assert streams[0].headers["Content-Type"].startswith("text/event-stream")
        assert streams[0].headers["X-Accel-Buffering"] == "no"
        streams.append(await RawStream.open(session, running, two["token"]))
        assert streams[-1].status == 200

        async def refused() -> bool:
            s = await RawStream.open(session, running, two["token"])
            streams.append(s)
            return s.status == 503 and "Retry-After" in s.headers

        # the replaced stream's slot is freed once the gateway noticed it: then 3 are open
        await eventually(refused, what="a fourth stream refused")
        _, listing, _ = await api.get("/v1/devices")
        assert all(d["online"] for d in listing["devices"])
    finally:
        for s in streams:
            await s.close()
        await running.stop()


async def test_keepalive_comments_on_a_quiet_stream(
    session: aiohttp.ClientSession, database_url: str, account: tuple[str, str]
) -> None:
    """A quiet stream carries a :keepalive comment at the configured interval."""
    running = await start_gateway(database_url, mobile_keepalive=0.2)
    api = ApiClient(session, running.base_url, account[1])
    try:
        phone = await register(session, running, api)
        stream = await RawStream.open(session, running, phone["token"])
        await eventually(lambda: asyncio.sleep(0, ":keepalive" in stream.comments), what="keepalive")
        await stream.close()
    finally:
        await running.stop()


async def test_forged_webhooks_and_routes_not_offered(
    session: aiohttp.ClientSession, api: ApiClient, gateway: RunningGateway
) -> None:
    """Webhooks without the phone's signature get 401; what relaygate does not offer gets 501."""
    phone = await register(session, gateway, api)
    auth = f"Bearer {phone['token']}"
    _, settings = await call(session, gateway, "GET", "/settings", auth=auth)
    key = settings["webhooks"]["signing_key"]
    body = msgspec.json.encode({"event": "system:ping", "payload": {}})
    url = f"{mobile_url(gateway)}/inbound/{phone['id']}"
    cases = [
        {},
        signed("wrong-key", body),
        signed(key, body, at=1),  # far too old
        {**signed(key, body), "X-Timestamp": "abc"},
        {**signed(key, body), "X-Signature": "00" * 32},
    ]
    for headers in cases:
        async with session.post(url, data=body, headers=headers) as resp:
            assert resp.status == 401, headers
    async with session.post(
        f"{mobile_url(gateway)}/inbound/dev_nobody", data=body, headers=signed(key, body)
    ) as resp:
        assert resp.status == 401
    for junk in (b"[]", b"{", b'{"event": 5}'):
        async with session.post(url, data=junk, headers=signed(key, junk)) as resp:
            assert resp.status == 422, junk
    async with session.post(url, data=body, headers=signed(key, body)) as resp:
        assert resp.status == 204
    for method, path in (("GET", "/user/code"), ("PATCH", "/user/password"), ("GET", "/inbox")):
        status, answer = await call(session, gateway, method, path, auth=auth, body={})
        assert status == 501 and answer["error"]["code"] == "not_implemented", path


async def test_registration_secret_signs_up_into_its_account(
    session: aiohttp.ClientSession, database_url: str, account: tuple[str, str]
) -> None:
    """With an operator's registration secret as the app's private token a phone joins that
    account without a code; another secret or one for a missing account is 401."""
    secret = "s3cret-for-the-shop-phones"
    running = await start_gateway(
        database_url,
        mobile_registration_secrets=(f"{account[0]}={secret}", "acc_gone=another-secret-0123456789"),
    )
    api = ApiClient(session, running.base_url, account[1])
    try:
        body = {"name": "xiaomi/redmi"}
        for auth in (f"Bearer {secret}x", "Bearer another-secret-0123456789", f"Basic {secret}"):
            status, answer = await call(session, running, "POST", "/device", auth=auth, body=body)
            assert status == 401, (auth, answer)
        status, answer = await call(session, running, "POST", "/device", auth=f"Bearer {secret}", body=body)
        assert status == 201 and answer["token"].startswith("rgm_")
        _, listing, _ = await api.get("/v1/devices")
        assert [d["id"] for d in listing["devices"]] == [answer["id"]]
    finally:
        await running.stop()


def _junk(rng: random.Random) -> bytes:
    """One hostile body: broken JSON, wrong shapes, odd characters, deep nesting, huge numbers."""
    choices: list[Any] = [
        rng.randbytes(rng.randint(0, 64)),
        b"[" * rng.randint(1, 3000),
        msgspec.json.encode({"id": "\U0001f600" * 70, "state": "Sent"}),
        msgspec.json.encode([{"id": "req_x", "state": "Sent", "states": {"Sent": 10**40}}]),
        msgspec.json.encode(
            [{"id": "req_x", "state": "Failed", "recipients": [{"state": "Failed", "error": "\x00"}]}]
        ),
        msgspec.json.encode({"name": "\u2028" * 300, "simCards": [{"simNumber": 99}] * 10}),
        msgspec.json.encode({"event": "sms:received", "payload": {"messageId": [], "message": {}}}),
        msgspec.json.encode([None, 1, "x", {"id": "y"}]),
        b'{"id": 1e999}',
        b'"\\ud800"',
    ]
    return bytes(rng.choice(choices))


async def test_no_route_answers_5xx_to_junk(
    session: aiohttp.ClientSession, api: ApiClient, gateway: RunningGateway
) -> None:
    """Seeded junk bodies and headers on every mobile route: always a 2xx/4xx/501 answer, never a 500."""
    phone = await register(session, gateway, api)
    rng = random.Random(15)
    routes = [
        ("POST", "/device"),
        ("PATCH", "/device"),
        ("GET", "/device"),
        ("GET", "/message"),
        ("PATCH", "/message"),
        ("GET", "/settings"),
        ("GET", "/webhooks"),
        ("POST", f"/inbound/{phone['id']}"),
        ("POST", "/inbound/dev_x"),
        ("DELETE", "/device"),
    ]
    auths = [f"Bearer {phone['token']}", "Code ABCD-EFGH", "Bearer " + "x" * 9000, "Basic ===", None]
    for _ in range(8):
        for method, path in routes:
            auth = rng.choice(auths)
            status, answer = await call(session, gateway, method, path, auth=auth, data=_junk(rng))
            assert status < 500 or status == 501, (method, path, auth and auth[:20], status, answer)
    assert (await call(session, gateway, "GET", "/settings", auth=f"Bearer {phone['token']}"))[0] == 200
