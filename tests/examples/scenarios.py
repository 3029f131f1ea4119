"""What every example test does, whatever the language: one live gateway with two simulated
relays per test module (:func:`running_kit`), each example run as a subprocess
(:meth:`Kit.run`), and the scenarios: :func:`api_scenario` (health, send SMS, status, send
and verify OTP, error output), :func:`list_scenario` (queue a recipient list) and
:func:`receiver_scenario` (real signed deliveries, a secret rotation, then forged, tampered and
stale requests).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.sim.relay import RelayFleet
from tests.examples.toolchains import EXAMPLES
from tests.harness import (
    ApiClient,
    DatabaseFactory,
    RunningGateway,
    fleet_options,
    free_port,
    make_account,
    start_gateway,
)

__all__ = [
    "RUN_TIMEOUT",
    "Kit",
    "Language",
    "api_scenario",
    "list_scenario",
    "receiver_scenario",
    "register_webhook",
    "running_kit",
    "script",
    "signed",
]

RUN_TIMEOUT = 30.0
"""Seconds one example may run (a JVM start included)."""

NUMBER_ORDER = ["curl", "python", "node", "axios", "php", "ruby", "go", "java", "kotlin"]


@dataclass(frozen=True)
class Language:
    """How to run one language's examples: ``argv(action, *args)`` for every action."""

    name: str
    argv: Callable[[str, tuple[str, ...]], list[str]]
    receiver: Callable[[int], list[str]] | None
    """argv of the webhook receiver listening on a port, or None (a verifier script instead)."""


def script(interpreter: list[str], folder: str, suffix: str) -> Callable[[str, tuple[str, ...]], list[str]]:
    """argv of ``<interpreter> docs/examples/<folder>/<action><suffix> args…``."""
    return lambda action, args: [*interpreter, str(EXAMPLES / folder / f"{action}{suffix}"), *args]


@dataclass
class Kit:
    """One gateway, one account, two simulated relays and the built examples, for the module."""

    running: RunningGateway
    fleet: RelayFleet
    token: str
    api: ApiClient
    languages: dict[str, Language]

    def env(self, **extra: str) -> dict[str, str]:
        """The environment an example runs with."""
        return {
            **os.environ,
            "RELAYGATE_BASE_URL": self.running.base_url,
            "RELAYGATE_TOKEN": self.token,
            **extra,
        }

    async def run(self, language: str, action: str, *args: str, **env: str) -> tuple[int, str, str]:
        """Run one example to its end: ``(exit status, stdout, stderr)``."""
        argv = self.languages[language].argv(action, args)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env(**env),
        )
        try:
            async with asyncio.timeout(RUN_TIMEOUT):
                out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        return proc.returncode or 0, out.decode(), err.decode()

    async def sent_sms(self, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """What the simulated relay received for ``request_id`` (waits for it)."""
        async with asyncio.timeout(timeout):
            while True:
                for record in self.fleet.sent:
                    if record["id"] == request_id:
                        return record
                await asyncio.sleep(0.02)

    async def wait_status(self, request_id: str, status: str, timeout: float = 10.0) -> dict[str, Any]:
        """The message's status answer once it reached ``status``."""
        async with asyncio.timeout(timeout):
            while True:
                code, body, _ = await self.api.get("/v1/messages/status", params={"request_id": request_id})
                assert code == 200, body
                if body["status"] == status:
                    return dict(body)
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_kit(databases: DatabaseFactory, languages: dict[str, Language]) -> AsyncIterator[Kit]:
    """A gateway with two relays that send and deliver at once, and an all-scopes token."""
    database_url = await databases.create()
    running = await start_gateway(database_url, pair_rate_per_second=1e6, pair_burst=10**6)
    _, token = await make_account(database_url)
    fleet = await RelayFleet.start(fleet_options(running, token, 2))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        api = ApiClient(session, running.base_url, token)
        for relay in fleet.relays:
            status, body, _ = await api.request(
                "PATCH", f"/v1/devices/{relay.device_id}", json={"per_minute_limit": 1000}
            )
            assert status == 200, body
        try:
            yield Kit(running, fleet, token, api, languages)
        finally:
            await fleet.stop()
            await running.stop()


def _number(language: str) -> str:
    """A distinct Uzbek mobile number per language (OTP resends are throttled per number)."""
    return f"+99890{1000000 + NUMBER_ORDER.index(language) * 1111:07d}"


async def _expected_error(kit: Kit, path: str, body: dict[str, Any]) -> tuple[str, str]:
    """The code and message the gateway itself gives for this bad request."""
    status, answer, _ = await kit.api.post(path, json=body)
    assert status >= 400 and answer["ok"] is False, answer
    return answer["error"]["code"], answer["error"]["message"]


def signed(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """A ``v1,<signature>`` value, as the gateway computes it."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class ReceiverProcess:
    """An example webhook receiver running as a subprocess; its output read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    async def next_line(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        """The next output line that matches ``pattern`` (other lines are kept in ``lines``)."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise AssertionError(f"receiver exited; output: {self.lines}")
                line = raw.decode().strip()
                self.lines.append(line)
                if match := re.search(pattern, line):
                    return match

    async def stop(self) -> None:
        """Terminate it and reap it."""
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def register_webhook(kit: Kit, url: str) -> tuple[str, str]:
    """A ``webhook.test`` endpoint at ``url``: ``(webhook id, secret)``."""
    status, body, _ = await kit.api.post("/v1/webhooks", json={"url": url, "events": ["webhook.test"]})
    assert status == 201, body
    return body["webhook"]["id"], body["secret"]


async def _wait_delivery(kit: Kit, delivery_id: str, timeout: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            _, body, _ = await kit.api.get(f"/v1/webhooks/deliveries/{delivery_id}")
            if body["delivery"]["status"] != "pending":
                return dict(body)
            await asyncio.sleep(0.05)


async def api_scenario(kit: Kit, language: str) -> None:
    """Run ``language``'s health, send SMS, status, send OTP and verify OTP examples end to end,
    and its error output for a refused request and a wrong token."""
    to = _number(language)

    code, out, err = await kit.run(language, "health")
    assert code == 0, err
    _, health, _ = await kit.api.get("/v1/health")
    assert out.strip() == f"status=ok database=ok version={health['version']}"

    text = f'Hi "{language}" — café ✓ #42'  # quotes and non-ASCII must survive the JSON encoding
    code, out, err = await kit.run(language, "send_sms", to, text)
    assert code == 0, err
    match = re.fullmatch(r"queued request_id=(req_[0-9A-Z]{26})", out.strip())
    assert match, out
    request_id = match.group(1)
    record = await kit.sent_sms(request_id)
    assert record["to"] == to and record["message"] == text
    delivered = await kit.wait_status(request_id, "delivered")

    code, out, err = await kit.run(language, "message_status", request_id)
    assert code == 0, err
    assert out.strip() == (
        f"status=delivered attempts=1 device={delivered['device_name']} failure_reason=-"
    ), out

    code, out, err = await kit.run(language, "send_otp", to)
    assert code == 0, err
    match = re.fullmatch(r"otp_id=(otp_[0-9A-Z]{26}) status=sent expires_in_seconds=300", out.strip())
    assert match, out
    otp_id = match.group(1)
    _, otp, _ = await kit.api.get(f"/v1/otp/{otp_id}")
    assert otp["to"] == to and otp["purpose"] == "login"
    sms = await kit.sent_sms(otp["sms"]["request_id"])
    digits = re.findall(r"\b\d{6}\b", sms["message"])
    assert len(digits) == 1, sms["message"]
    right = digits[0]
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"

    code, out, err = await kit.run(language, "verify_otp", otp_id, wrong)
    assert code == 1, (out, err)
    assert out.strip() == "status=failed attempts_left=4 reason=invalid_code", out

    code, out, err = await kit.run(language, "verify_otp", otp_id, right)
    assert code == 0, (out, err)
    assert out.strip() == "status=success attempts_left=4", out
    _, otp, _ = await kit.api.get(f"/v1/otp/{otp_id}")
    assert otp["status"] == "verified"

    # Errors: the gateway's own code and message, on stderr, exit status 1.
    error_code, message = await _expected_error(kit, "/v1/sms/send", {"to": "not-a-number", "message": "x"})
    code, out, err = await kit.run(language, "send_sms", "not-a-number", "x")
    assert code == 1 and out == "", (out, err)
    assert err.splitlines()[0] == f"error {error_code}: {message}", err
    code, out, err = await kit.run(language, "message_status", request_id, RELAYGATE_TOKEN="rgat_wrong")
    assert code == 1 and out == "", (out, err)
    assert err.splitlines()[0].startswith("error unauthorized: "), err
    assert not [s for s in kit.fleet.sent if s["message"] == "x"], "a refused send reached a relay"


async def list_scenario(kit: Kit, language: str) -> None:
    """``language``'s queue-list example queues a list of the account's directory (an opted-out
    member skipped and named), each member gets its own rendered SMS, and an unknown
    placeholder prints our validation_error."""
    base = 2_000_000 + NUMBER_ORDER.index(language) * 10
    members = [("Ali", f"+99891{base:07d}", False), ("Ольга", f"+99891{base + 1:07d}", False)]
    members.append(("Stopped", f"+99891{base + 2:07d}", True))
    ids = []
    for name, phone, opted_out in members:
        status, body, _ = await kit.api.post(
            "/v1/recipients", json={"name": name, "phone": phone, "opted_out": opted_out}
        )
        assert status == 201, body
        ids.append(body["recipient"]["id"])
    status, body, _ = await kit.api.post(
        "/v1/recipient-lists", json={"name": f"{language} customers", "recipient_ids": ids}
    )
    assert status == 201, body
    list_id = body["list"]["id"]

    code, out, err = await kit.run(language, "queue_list", list_id, "Hi {name}, café ✓")
    assert code == 0, err
    lines = out.strip().splitlines()
    match = re.fullmatch(r"queued batch_id=(bat_[0-9A-Z]{26}) queued=2 skipped=1", lines[0])
    assert match, out
    assert lines[1:] == [f"  skipped {members[2][1]} (opted_out)"], out
    status, page, _ = await kit.api.get("/v1/messages", params={"batch_id": match.group(1)})
    assert status == 200 and len(page["messages"]) == 2, page
    texts = {}
    for item in page["messages"]:
        record = await kit.sent_sms(item["request_id"])
        texts[record["to"]] = record["message"]
    assert texts == {phone: f"Hi {name}, café ✓" for name, phone, _ in members[:2]}

    error_code, message = await _expected_error(
        kit, "/v1/recipient-lists/queue", {"list_id": list_id, "message": "Hi {nickname}"}
    )
    code, out, err = await kit.run(language, "queue_list", list_id, "Hi {nickname}")
    assert code == 1 and out == "", (out, err)
    assert err.splitlines()[0] == f"error {error_code}: {message}", err
    assert "nickname" in err, err


async def receiver_scenario(kit: Kit, language: str) -> None:
    """``language``'s receiver accepts the gateway's real signed deliveries (also during a
    secret rotation) with a 2xx, and refuses tampered, stale, unsigned and foreign requests with 401."""
    port = free_port()
    webhook_id, secret = await register_webhook(kit, f"http://127.0.0.1:{port}/relaygate/webhook")
    receiver_argv = kit.languages[language].receiver
    assert receiver_argv is not None
    proc = await asyncio.create_subprocess_exec(
        *receiver_argv(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=kit.env(RELAYGATE_WEBHOOK_SECRET=secret, PORT=str(port)),
    )
    receiver = ReceiverProcess(proc)
    try:
        await receiver.next_line(rf"listening on http://127\.0\.0\.1:{port}|Development Server .*started")

        for rotate in (False, True):
            if rotate:  # the gateway now signs with both; the receiver still knows only the old one
                status, body, _ = await kit.api.post(f"/v1/webhooks/{webhook_id}/rotate-secret")
                assert status == 200 and body["secret"] != secret, body
            status, test, _ = await kit.api.post(f"/v1/webhooks/{webhook_id}/test")
            assert status == 202, test
            line = (await receiver.next_line(r"^(verified|rejected)")).string
            assert line == f"verified webhook.test id={test['event_id']}", receiver.lines
            delivery = await _wait_delivery(kit, test["delivery_id"])
            assert delivery["delivery"]["status"] == "succeeded", delivery
            assert 200 <= delivery["attempts_log"][-1]["http_status"] < 300, delivery

        url = f"http://127.0.0.1:{port}/relaygate/webhook"
        body = json.dumps(
            {"type": "message.delivered", "timestamp": "2026-01-01T00:00:00Z", "data": {}}
        ).encode()
        now = int(time.time())
        good = signed(secret, "evt_forged", now, body)
        cases: list[tuple[str, bytes, dict[str, str], bool]] = [
            ("two signatures, the second good", body, {"webhook-signature": f"v1,AAAA {good}"}, True),
            ("tampered body", body.replace(b"delivered", b"failed"), {}, False),
            (
                "stale timestamp",
                body,
                {
                    "webhook-timestamp": str(now - 400),
                    "webhook-signature": signed(secret, "evt_forged", now - 400, body),
                },
                False,
            ),
            (
                "future timestamp",
                body,
                {
                    "webhook-timestamp": str(now + 400),
                    "webhook-signature": signed(secret, "evt_forged", now + 400, body),
                },
                False,
            ),
            (
                "another secret",
                body,
                {
                    "webhook-signature": signed(
                        "whsec_" + base64.b64encode(b"k" * 32).decode(), "evt_forged", now, body
                    )
                },
                False,
            ),
            ("other id", body, {"webhook-id": "evt_other"}, False),
            ("no signature", body, {"webhook-signature": ""}, False),
            ("wrong version", body, {"webhook-signature": good.replace("v1,", "v2,")}, False),
        ]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            for name, payload, override, accept in cases:
                headers = {
                    "webhook-id": "evt_forged",
                    "webhook-timestamp": str(now),
                    "webhook-signature": good,
                    "content-type": "application/json",
                    **override,
                }
                headers = {k: v for k, v in headers.items() if v}
                async with session.post(url, data=payload, headers=headers) as resp:
                    answer = resp.status
                line = (await receiver.next_line(r"^(verified|rejected)")).string
                if accept:
                    assert 200 <= answer < 300 and line.startswith("verified message.delivered"), (
                        name,
                        answer,
                        line,
                    )
                else:
                    assert answer == 401 and line.startswith("rejected"), (name, answer, line)
    finally:
        await receiver.stop()
