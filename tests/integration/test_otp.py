"""OTP through real sockets: send → a simulated relay sends the text in the asked language →
verify; wrong codes, expiry, lockout, reuse, concurrent verifies, resend throttling,
invalidation by a new send, idempotency, the status view, bad input, and the code never
reaching the database or the logs in clear.

Time is mocked by a fake clock handed to :class:`gateway.otp.service.OtpService` or by moving stored
timestamps; randomness by an injected code generator. Nothing else is faked.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
from structlog.testing import capture_logs

from gateway.access.accounts import Account, get_account
from gateway.errors import ApiError
from gateway.ids import new_id
from gateway.otp.service import OtpRequest, OtpService, generate_code
from gateway.otp.templates import TEMPLATES, render
from gateway.otp.writers import OtpPolicy, SendItem, write_sends
from gateway.sending.messages import MessageSpec, build_message
from gateway.sim.relay import RelayFleet, SimOptions
from gateway.timefmt import utcnow
from store.otp import NewCode
from tests.harness import ApiClient, RunningGateway, eventually, make_account, start_gateway
from tests.relay_client import RawRelay, pair_relay

TO = "+998901234567"


class FakeClock:
    """A wall clock that moves only when the test says so."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def fleet(gateway: RunningGateway, account: tuple[str, str]) -> AsyncIterator[RelayFleet]:
    """One simulated relay phone, online, that sends quickly."""
    relays = await RelayFleet.start(
        SimOptions(api_url=gateway.base_url, token=account[1], sent_delay=0.01, delivered_delay=0.02, seed=6)
    )
    yield relays
    await relays.stop()


async def send_otp(api: ApiClient, **body: Any) -> dict[str, Any]:
    """POST /v1/otp/send and expect the contract's answer."""
    status, answer, _ = await api.post("/v1/otp/send", json={"to": TO, "purpose": "login", **body})
    assert status == 200, answer
    assert answer["ok"] is True and answer["status"] == "sent"
    assert answer["otp_id"].startswith("otp_") and answer["request_id"].startswith("req_")
    return dict(answer)


async def received(fleet: RelayFleet, request_id: str, code_length: int = 6) -> tuple[str, str]:
    """``(text, code)`` of the SMS the relay sent for ``request_id``."""

    async def sent() -> str | None:
        return next((str(r["message"]) for r in fleet.sent if r["id"] == request_id), None)

    text = await eventually(sent, interval=0.01, what=f"the relay sent {request_id}")
    codes = re.findall(rf"(?<![0-9])[0-9]{{{code_length}}}(?![0-9])", text)
    assert len(codes) == 1, text
    return text, codes[0]


async def verify(api: ApiClient, code: str, **body: Any) -> dict[str, Any]:
    """POST /v1/otp/verify and expect a 200 answer."""
    status, answer, _ = await api.post("/v1/otp/verify", json={"code": code, **body})
    assert status == 200, answer
    return dict(answer)


def wrong(code: str) -> str:
    """A code of the same length that is not ``code``."""
    return str((int(code) + 1) % 10 ** len(code)).zfill(len(code))


async def fetch(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """Rows of one query on a fresh connection."""
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def service_with_clock(
    gateway: RunningGateway, account_id: str, clock: FakeClock, codes: list[str] | None = None
) -> tuple[OtpService, Account]:
    """The running gateway's OTP core with a fake clock (and, if given, known codes)."""
    svc = gateway.gateway.services
    assert svc is not None
    account = await get_account(svc.pool, account_id)
    assert account is not None
    supply = iter(codes or [])
    service = OtpService(
        svc.pool,
        svc.pipeline,
        svc.secret,
        max_queue=svc.settings.max_queue_per_account,
        now=clock,
        generate_code=(lambda n: next(supply)) if codes else generate_code,
    )
    return service, account


# --- the happy path ---------------------------------------------------------------------------


async def test_send_relay_text_in_locale_then_verify_success(
    api: ApiClient, fleet: RelayFleet, database_url: str
) -> None:
    """The relay sends the Russian text with the code; the right code verifies once, fires
    otp.verified, and the status view shows the delivered SMS but never the code."""
    answer = await send_otp(api, locale="ru-RU", app_name="Acme")
    assert set(answer) == {
        "ok", "otp_id", "status", "expires_in_seconds", "request_id", "expires_at", "locale", "encoding",
        "segments",
    }  # fmt: skip
    assert answer["expires_in_seconds"] == 300 and answer["locale"] == "ru"
    assert answer["encoding"] == "UCS-2" and answer["segments"] == 1
    text, code = await received(fleet, answer["request_id"])
    assert text == render(TEMPLATES["ru"], code=code, seconds=300, app_name="Acme")
    assert fleet.sent[0]["to"] == TO

    result = await verify(api, code, otp_id=answer["otp_id"])
    assert result == {"ok": True, "otp_id": answer["otp_id"], "status": "success", "attempts_left": 5}

    async def delivered() -> dict[str, Any] | None:
        status, view, _ = await api.get(f"/v1/otp/{answer['otp_id']}")
        assert status == 200, view
        return dict(view) if view["sms"]["status"] == "delivered" else None

    view = await eventually(delivered, what="the OTP's SMS delivered")
    assert view["status"] == "verified" and view["attempts_used"] == 0
    assert view["to"] == TO and view["purpose"] == "login" and view["locale"] == "ru"
    assert view["verified_at"] and view["expires_at"] == answer["expires_at"]
    assert view["sms"]["request_id"] == answer["request_id"] and view["sms"]["delivered_at"]
    assert code not in json.dumps(view) and "code_hash" not in view

    events = await fetch(database_url, "SELECT data FROM events WHERE type = 'otp.verified'")
    assert len(events) == 1
    data = json.loads(events[0]["data"])
    assert data["otp_id"] == answer["otp_id"] and data["request_id"] == answer["request_id"]
    assert data["to"] == TO and data["purpose"] == "login" and data["verified_at"].endswith("Z")
    (message,) = await fetch(database_url, "SELECT kind, priority, expires_at FROM messages")
    (otp,) = await fetch(database_url, "SELECT expires_at FROM otps")
    assert message["kind"] == "otp" and message["priority"] == 0
    assert message["expires_at"] == otp["expires_at"]


async def test_texts_follow_the_locale_and_fall_back_to_english(api: ApiClient, fleet: RelayFleet) -> None:
    """Each locale gets its own text (pt-BR → Portuguese, uz → Uzbek Latin); an unknown one English;
    a custom template is used as given."""
    cases = [("bn", "bn"), ("pt-BR", "pt"), ("uz", "uz"), ("ar", "ar"), ("xx-YY", "en")]
    for index, (tag, locale) in enumerate(cases):
        answer = await send_otp(api, to=f"+99890123450{index}", locale=tag, code_length=4)
        assert answer["locale"] == locale
        text, code = await received(fleet, answer["request_id"], 4)
        assert text == render(TEMPLATES[locale], code=code, seconds=300, app_name=None)
    answer = await send_otp(api, template="{app}{code} is your Acme PIN ({minutes}m)", expires_in_seconds=90)
    text, code = await received(fleet, answer["request_id"])
    assert text == f"{code} is your Acme PIN (2m)" and answer["encoding"] == "GSM-7"


# --- verify outcomes --------------------------------------------------------------------------


async def test_wrong_code_then_right_code(api: ApiClient, fleet: RelayFleet) -> None:
    """A wrong code is failed/invalid_code and costs an attempt; the right one still succeeds."""
    answer = await send_otp(api)
    _, code = await received(fleet, answer["request_id"])
    bad = await verify(api, wrong(code), otp_id=answer["otp_id"])
    assert bad == {
        "ok": True, "otp_id": answer["otp_id"], "status": "failed", "attempts_left": 4, "reason": "invalid_code"
    }  # fmt: skip
    good = await verify(api, code, otp_id=answer["otp_id"])
    assert good["status"] == "success" and good["attempts_left"] == 4


async def test_lockout_after_five_wrong_codes(api: ApiClient, fleet: RelayFleet) -> None:
    """After 5 wrong codes the OTP is locked: even the right code is failed/too_many_attempts."""
    answer = await send_otp(api)
    _, code = await received(fleet, answer["request_id"])
    lefts = [(await verify(api, wrong(code), otp_id=answer["otp_id"]))["attempts_left"] for _ in range(5)]
    assert lefts == [4, 3, 2, 1, 0]
    locked = await verify(api, code, otp_id=answer["otp_id"])
    assert locked["status"] == "failed" and locked["reason"] == "too_many_attempts"
    assert locked["attempts_left"] == 0
    _, view, _ = await api.get(f"/v1/otp/{answer['otp_id']}")
    assert view["status"] == "locked" and view["attempts_used"] == 5


async def test_used_code_cannot_be_reused(api: ApiClient, fleet: RelayFleet) -> None:
    """A second verify of a used code is failed/already_used and fires no second event."""
    answer = await send_otp(api)
    _, code = await received(fleet, answer["request_id"])
    assert (await verify(api, code, to=TO, purpose="login"))["status"] == "success"
    again = await verify(api, code, otp_id=answer["otp_id"])
    assert again["status"] == "failed" and again["reason"] == "already_used"


async def test_twenty_concurrent_verifies_give_one_success(
    api: ApiClient, fleet: RelayFleet, database_url: str
) -> None:
    """Twenty concurrent verifies of the right code: exactly one success and one otp.verified event."""
    answer = await send_otp(api)
    _, code = await received(fleet, answer["request_id"])
    results = await asyncio.gather(*(verify(api, code, otp_id=answer["otp_id"]) for _ in range(20)))
    assert sorted(r["status"] for r in results) == ["failed"] * 19 + ["success"]
    assert {r.get("reason") for r in results if r["status"] == "failed"} == {"already_used"}
    events = await fetch(database_url, "SELECT id FROM events WHERE type = 'otp.verified'")
    assert len(events) == 1


async def test_expiry_with_a_fake_clock(
    api: ApiClient, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """A code verifies until its expiry and is expired from then on, even with the right code."""
    clock = FakeClock(utcnow())
    service, acct = await service_with_clock(gateway, account[0], clock, ["123456", "654321"])
    first = await service.send(acct, OtpRequest(to=TO, purpose="login", expires_in_seconds=60))
    clock.advance(59)
    assert (await service.verify(acct, "000000", otp_id=first.otp_id)).reason == "invalid_code"
    clock.advance(1)
    verdict = await service.verify(acct, "123456", otp_id=first.otp_id)
    assert (verdict.status, verdict.reason, verdict.attempts_left) == ("expired", "expired", 4)
    over_http = await verify(api, "123456", otp_id=first.otp_id)
    assert over_http["status"] == "expired" and over_http["reason"] == "expired"
    _, view, _ = await api.get(f"/v1/otp/{first.otp_id}")
    assert view["status"] == "expired"


async def test_a_code_not_sent_in_time_is_never_sent_late(
    api: ApiClient, gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """With no relay online until the code expires, its SMS fails and a relay connecting later gets nothing."""
    clock = FakeClock(utcnow() - timedelta(seconds=299.5))
    service, acct = await service_with_clock(gateway, account[0], clock)
    sent = await service.send(acct, OtpRequest(to=TO, purpose="login"))
    paired = await pair_relay(api)

    async def failed() -> dict[str, Any] | None:
        _, body, _ = await api.get("/v1/messages/status", params={"request_id": sent.request_id})
        return dict(body) if body["status"] == "failed" else None

    body = await eventually(failed, interval=0.05, what="the OTP's SMS failed")
    assert body["failure_reason"] in ("expired", "no_device") and body["kind"] == "otp"
    relay = await RawRelay.connect(gateway.relay_url, paired["device_token"])
    with pytest.raises(TimeoutError):
        await relay.recv(timeout=0.3)
    await relay.close()


# --- resends ----------------------------------------------------------------------------------


async def test_resend_within_thirty_seconds_is_rate_limited(api: ApiClient) -> None:
    """A second send to the same number and purpose within 30 s is 429 with Retry-After; another
    purpose or number is not affected."""
    await send_otp(api)
    status, body, headers = await api.post("/v1/otp/send", json={"to": TO, "purpose": "login"})
    assert status == 429 and body["error"]["code"] == "rate_limited"
    retry = int(headers["Retry-After"])
    assert 1 <= retry <= 30 and body["error"]["details"]["retry_after_seconds"] == retry
    await send_otp(api, purpose="reset")
    await send_otp(api, to="+998901234599")


async def test_at_most_five_sends_per_hour(gateway: RunningGateway, account: tuple[str, str]) -> None:
    """Five sends 31 s apart pass; the sixth waits until the first leaves the hour window."""
    clock = FakeClock(utcnow())
    service, acct = await service_with_clock(gateway, account[0], clock)
    request = OtpRequest(to=TO, purpose="signup")
    for _ in range(5):
        await service.send(acct, request)
        clock.advance(31)
    with pytest.raises(ApiError) as refused:
        await service.send(acct, request)
    assert refused.value.code == "rate_limited"
    assert refused.value.details["retry_after_seconds"] == 3600 - 5 * 31
    clock.advance(3600 - 5 * 31 + 1)
    await service.send(acct, request)


async def test_new_send_invalidates_the_previous_code(
    api: ApiClient, fleet: RelayFleet, database_url: str
) -> None:
    """After a new send for the same number and purpose the old code is failed/invalidated and
    verify by number and purpose checks the newest code."""
    first = await send_otp(api)
    _, old_code = await received(fleet, first["request_id"])
    # Mock time: the first send happened 31 s ago.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE otps SET created_at = created_at - interval '31 seconds'")
    finally:
        await conn.close()
    second = await send_otp(api)
    _, new_code = await received(fleet, second["request_id"])
    stale = await verify(api, old_code, otp_id=first["otp_id"])
    assert stale["status"] == "failed" and stale["reason"] == "invalidated"
    if old_code != new_code:
        assert (await verify(api, old_code, to=TO, purpose="login"))["reason"] == "invalid_code"
    assert (await verify(api, new_code, to=TO, purpose="login"))["status"] == "success"
    _, view, _ = await api.get(f"/v1/otp/{first['otp_id']}")
    assert view["status"] == "invalidated"


async def test_idempotency_key_replays_the_first_answer(api: ApiClient, database_url: str) -> None:
    """The same Idempotency-Key and body answer the same OTP without a second code; another body conflicts."""
    headers = {"Idempotency-Key": "otp-login-1"}
    first = await api.post("/v1/otp/send", json={"to": TO, "purpose": "login"}, headers=headers)
    again = await api.post("/v1/otp/send", json={"to": TO, "purpose": "login"}, headers=headers)
    assert first[0] == again[0] == 200 and first[1] == again[1]
    other = await api.post("/v1/otp/send", json={"to": TO, "purpose": "reset"}, headers=headers)
    assert other[0] == 409 and other[1]["error"]["code"] == "conflict"
    assert len(await fetch(database_url, "SELECT id FROM otps")) == 1


# --- group commit ----------------------------------------------------------------------------


async def test_concurrent_sends_to_many_numbers_share_transactions(
    gateway: RunningGateway, account: tuple[str, str], database_url: str
) -> None:
    """Forty sends to forty numbers started at once are written by the otp.sends writer in one or
    two transactions; each is stored pending with its SMS."""
    svc = gateway.gateway.services
    assert svc is not None and svc.otp_sends is not None
    acct = await get_account(svc.pool, account[0])
    assert acct is not None
    service = OtpService(
        svc.pool, svc.pipeline, svc.secret, max_queue=svc.settings.max_queue_per_account, sender=svc.otp_sends
    )
    before = svc.otp_sends.batches
    numbers = [f"+99890123{k:04d}" for k in range(40)]
    sent = await asyncio.gather(*(service.send(acct, OtpRequest(to=n, purpose="login")) for n in numbers))
    assert svc.otp_sends.batches - before <= 2
    rows = await fetch(
        database_url,
        "SELECT o.id, o.to_number, o.status, m.status AS sms FROM otps o JOIN messages m ON m.id = o.message_id",
    )
    assert sorted(r["to_number"] for r in rows) == numbers
    assert {r["status"] for r in rows} == {"pending"} and {r["sms"] for r in rows} <= {
        "queued", "dispatched", "sent", "delivered"
    }  # fmt: skip
    assert {r["id"] for r in rows} == {s.otp_id for s in sent}


async def test_concurrent_sends_to_one_pair_store_one_code(api: ApiClient, database_url: str) -> None:
    """Ten concurrent sends to one number and purpose: one code, nine refused by the resend
    interval (a second send of the pair in a batch waits for the next batch and sees the first)."""
    results = await asyncio.gather(
        *(api.post("/v1/otp/send", json={"to": TO, "purpose": "login"}) for _ in range(10))
    )
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] + [429] * 9, results
    reasons = {body["error"]["details"]["reason"] for status, body, _ in results if status == 429}
    assert reasons == {"otp_resend_interval"}
    assert len(await fetch(database_url, "SELECT id FROM otps WHERE status = 'pending'")) == 1


async def test_a_batch_defers_a_second_send_of_a_pair(
    gateway: RunningGateway, account: tuple[str, str]
) -> None:
    """write_sends with two sends of one pair in one batch stores the first and defers the
    second; written next, the second replaces the first (its SMS id is returned for cancelling)."""
    svc = gateway.gateway.services
    assert svc is not None
    acct = await get_account(svc.pool, account[0])
    assert acct is not None
    eager = OtpPolicy(min_resend_interval=0.0)

    def item(text: str) -> SendItem:
        message = build_message(acct, MessageSpec(to=TO, text=text, kind="otp"), svc.pipeline, max_queue=100)
        code = NewCode(
            id=new_id("otp"), account_id=acct.id, to_number=message.to, purpose="login", locale="en",
            code_hash=b"\x00" * 32, code_length=6, message_id=message.id, max_attempts=5,
            expires_at=message.expires_at, created_at=message.queued_at,
        )  # fmt: skip
        return SendItem(account=acct, purpose="login", locale="en", message=message, code=code, policy=eager)

    first, second = item("code 1"), item("code 2")
    async with svc.pool.acquire() as conn, conn.transaction():
        assert await write_sends(conn, [first, second]) == [[], None]
    async with svc.pool.acquire() as conn, conn.transaction():
        assert await write_sends(conn, [second]) == [[first.message.id]]
    rows = await svc.pool.fetch("SELECT id, status FROM otps ORDER BY created_at, id")
    assert [(r["id"], r["status"]) for r in rows] == [
        (first.code.id, "invalidated"),
        (second.code.id, "pending"),
    ]


# --- secrecy ----------------------------------------------------------------------------------


async def test_code_never_in_database_or_logs(
    api: ApiClient, fleet: RelayFleet, gateway: RunningGateway, database_url: str
) -> None:
    """Through a whole send → SMS → verify flow no log entry and no stored column holds the code;
    the stored body is masked and the sealed body opens only with the server secret."""
    with capture_logs() as logs:
        answer = await send_otp(api, app_name="Acme")
        text, code = await received(fleet, answer["request_id"])
        await verify(api, wrong(code), otp_id=answer["otp_id"])
        await verify(api, code, otp_id=answer["otp_id"])
        await api.get(f"/v1/otp/{answer['otp_id']}")
        await api.get("/v1/messages/status", params={"request_id": answer["request_id"]})
    assert {"otp.sent", "otp.verify"} <= {entry["event"] for entry in logs}
    leaks = [entry for entry in logs if code in repr(entry) or text in repr(entry)]
    assert leaks == []

    clear = re.compile(rf"(?<![0-9]){code}(?![0-9])")
    for table in ("messages", "otps", "events", "message_attempts", "idempotency_keys"):
        for row in await fetch(database_url, f"SELECT t::text AS dump FROM {table} t"):
            assert not clear.search(row["dump"]), (table, row["dump"])
    (message,) = await fetch(database_url, "SELECT id, body, sealed_body FROM messages")
    assert message["body"] == text.replace(code, "•" * 6)
    secret = gateway.gateway.services.secret if gateway.gateway.services else None
    assert secret is not None and secret.unseal(message["sealed_body"], message["id"]) == text
    status, shown, _ = await api.get("/v1/messages/status", params={"request_id": answer["request_id"]})
    assert status == 200 and code not in json.dumps(shown)


# --- access and bad input ---------------------------------------------------------------------


BAD_SENDS: list[tuple[dict[str, Any], str]] = [
    ({"purpose": "login"}, "to"),
    ({"to": "12"}, "to"),
    ({"to": "+1555", "purpose": "login"}, "to"),
    ({"to": TO}, "purpose"),
    ({"to": TO, "purpose": ""}, "purpose"),
    ({"to": TO, "purpose": "x" * 65}, "purpose"),
    ({"to": TO, "purpose": "log\nin"}, "purpose"),
    ({"to": TO, "purpose": "login", "expires_in_seconds": 601}, "expires_in_seconds"),
    ({"to": TO, "purpose": "login", "expires_in_seconds": 5}, "expires_in_seconds"),
    ({"to": TO, "purpose": "login", "code_length": 3}, "code_length"),
    ({"to": TO, "purpose": "login", "code_length": 9}, "code_length"),
    ({"to": TO, "purpose": "login", "locale": "english!"}, "locale"),
    ({"to": TO, "purpose": "login", "template": "Your code"}, "template"),
    ({"to": TO, "purpose": "login", "template": "{code} for {user}"}, "template"),
    ({"to": TO, "purpose": "login", "template": "{code}" + "x" * 300}, "template"),
    ({"to": TO, "purpose": "login", "app_name": "a" * 41}, "app_name"),
    ({"to": TO, "purpose": "login", "code": "123456"}, "code"),
]
BAD_VERIFIES: list[tuple[dict[str, Any], str]] = [
    ({"otp_id": "otp_x"}, "code"),
    ({"otp_id": "otp_x", "code": "12ab56"}, "code"),
    ({"otp_id": "otp_x", "code": "123"}, "code"),
    ({"code": "123456"}, "body"),
    ({"code": "123456", "to": TO}, "body"),
    ({"code": "123456", "otp_id": "otp_x", "to": TO, "purpose": "login"}, "body"),
    ({"code": "123456", "otp_id": "otp_x", "extra": 1}, "extra"),
]


async def test_send_bad_input(api: ApiClient, database_url: str) -> None:
    """Bad send bodies are validation_error naming the field, and store nothing."""
    for body, field in BAD_SENDS:
        status, answer, _ = await api.post("/v1/otp/send", json=body)
        assert status == 422 and answer["error"]["code"] == "validation_error", (body, answer)
        assert field in answer["error"]["details"]["fields"], (body, answer)
    status, answer, _ = await api.post("/v1/otp/send", data=b"{not json")
    assert status == 422 and answer["error"]["code"] == "validation_error"
    assert await fetch(database_url, "SELECT id FROM messages") == []
    assert await fetch(database_url, "SELECT id FROM otps") == []


async def test_verify_bad_input(api: ApiClient) -> None:
    """Bad verify bodies are validation_error naming the field (or the body for either/or rules)."""
    for body, where in BAD_VERIFIES:
        status, answer, _ = await api.post("/v1/otp/verify", json=body)
        assert status == 422 and answer["error"]["code"] == "validation_error", (body, answer)
        assert where in answer["error"]["details"]["fields"], (body, answer)


async def test_unknown_malformed_and_foreign_ids_are_not_found(
    api: ApiClient, gateway: RunningGateway, database_url: str
) -> None:
    """Unknown, malformed and other accounts' OTP ids are not_found on verify and status."""
    answer = await send_otp(api)
    _, other_token = await make_account(database_url, "other")
    other = api.with_token(other_token)
    for client, otp_id in [(api, "otp_01J00000000000000000000000"), (api, "nope"), (other, answer["otp_id"])]:
        status, body, _ = await client.post("/v1/otp/verify", json={"otp_id": otp_id, "code": "123456"})
        assert status == 404 and body["error"]["code"] == "not_found"
        status, body, _ = await client.get(f"/v1/otp/{otp_id}")
        assert status == 404 and body["error"]["code"] == "not_found"
    status, body, _ = await other.post(
        "/v1/otp/verify", json={"to": TO, "purpose": "login", "code": "123456"}
    )
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_scopes_and_subscription(api: ApiClient, gateway: RunningGateway, database_url: str) -> None:
    """otp.send and otp.verify are separate scopes; an expired subscription blocks sending, not verifying."""
    _, verifier = await make_account(database_url, "v", scopes=["otp.verify"])
    status, body, _ = await api.with_token(verifier).post("/v1/otp/send", json={"to": TO, "purpose": "login"})
    assert status == 403 and body["error"]["code"] == "forbidden"
    _, sender = await make_account(database_url, "s", scopes=["otp.send"])
    status, body, _ = await api.with_token(sender).post(
        "/v1/otp/verify", json={"otp_id": "x", "code": "1234"}
    )
    assert status == 403 and body["error"]["code"] == "forbidden"

    expired_id, expired_token = await make_account(
        database_url, "late", expires=(utcnow() - timedelta(days=2)).date()
    )
    late = api.with_token(expired_token)
    status, body, _ = await late.post("/v1/otp/send", json={"to": TO, "purpose": "login"})
    assert status == 402 and body["error"]["code"] == "subscription_expired"
    # A code sent before the subscription ran out can still be checked.
    service, acct = await service_with_clock(gateway, expired_id, FakeClock(utcnow()), ["424242"])
    sent = await service.send(acct, OtpRequest(to=TO, purpose="login"))
    assert (await verify(late, "424242", otp_id=sent.otp_id))["status"] == "success"


async def test_code_sms_survives_a_restart(database_url: str, session: aiohttp.ClientSession) -> None:
    """An OTP SMS still queued at shutdown is sent after a restart with the real code (unsealed from
    sealed_body), not the masked copy, and expires with the code."""
    running = await start_gateway(database_url)
    _, token = await make_account(database_url)
    paired = await pair_relay(ApiClient(session, running.base_url, token))
    answer = await send_otp(ApiClient(session, running.base_url, token))
    await running.stop()
    running = await start_gateway(database_url)
    try:
        api = ApiClient(session, running.base_url, token)
        relay = await RawRelay.connect(running.relay_url, paired["device_token"])
        command = await relay.recv()
        assert command["type"] == "send" and command["id"] == answer["request_id"]
        assert "•" not in command["message"]
        sent_until = datetime.fromisoformat(command["expires_at"].replace("Z", "+00:00"))
        code_until = datetime.fromisoformat(answer["expires_at"].replace("Z", "+00:00"))
        assert abs((sent_until - code_until).total_seconds()) < 0.001
        (code,) = re.findall(r"(?<![0-9])[0-9]{6}(?![0-9])", command["message"])
        assert (await verify(api, code, otp_id=answer["otp_id"]))["status"] == "success"
        await relay.close()
    finally:
        await running.stop()
