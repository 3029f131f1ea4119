"""The integration kit's examples (docs/examples/<language>/) for the languages CI executes:
cURL, Python, Node (fetch), Axios, PHP, Ruby, Go and Java, each run as a subprocess against a
live gateway with simulated relays (see tests/examples/scenarios.py).

Skipped only when ``RELAYGATE_EXAMPLE_TESTS=0``; a missing toolchain is a failure (``.ci/run``
installs them). Kotlin, C# and Laravel are in ``test_examples_compiled.py``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.examples.scenarios import (
    RUN_TIMEOUT,
    Kit,
    Language,
    api_scenario,
    list_scenario,
    receiver_scenario,
    register_webhook,
    running_kit,
    script,
    signed,
)
from tests.examples.toolchains import EXAMPLES, Built, build_examples
from tests.harness import DatabaseFactory
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.skipif(
    os.environ.get("RELAYGATE_EXAMPLE_TESTS") == "0", reason="RELAYGATE_EXAMPLE_TESTS=0"
)

LANGUAGES = ["curl", "python", "node", "axios", "php", "ruby", "go", "java"]


def _languages(built: Built) -> dict[str, Language]:
    java_classes = {
        "health": "Health",
        "send_sms": "SendSms",
        "message_status": "MessageStatus",
        "send_otp": "SendOtp",
        "verify_otp": "VerifyOtp",
        "queue_list": "QueueList",
        "webhook_receiver": "WebhookReceiver",
    }
    return {
        "curl": Language("curl", script(["bash"], "curl", ".sh"), None),
        "python": Language(
            "python",
            script([built.python], "python", ".py"),
            lambda port: [built.python, str(EXAMPLES / "python" / "webhook_receiver.py")],
        ),
        "node": Language(
            "node",
            script(["node"], "node", ".mjs"),
            lambda port: ["node", str(EXAMPLES / "node" / "webhook_receiver.mjs")],
        ),
        "axios": Language(
            "axios",
            script(["node"], "axios", ".mjs"),
            lambda port: ["node", str(EXAMPLES / "axios" / "webhook_receiver.mjs")],
        ),
        "php": Language(
            "php",
            script(["php"], "php", ".php"),
            lambda port: ["php", "-S", f"127.0.0.1:{port}", str(EXAMPLES / "php" / "webhook_receiver.php")],
        ),
        "ruby": Language(
            "ruby",
            script(["ruby"], "ruby", ".rb"),
            lambda port: ["ruby", str(EXAMPLES / "ruby" / "webhook_receiver.rb")],
        ),
        "go": Language(
            "go",
            lambda action, args: [str(built.go_bin / action), *args],
            lambda port: [str(built.go_bin / "webhook_receiver")],
        ),
        "java": Language(
            "java",
            lambda action, args: ["java", "-cp", str(built.java_classes), java_classes[action], *args],
            lambda port: ["java", "-cp", str(built.java_classes), "WebhookReceiver"],
        ),
    }


LANGUAGES = ["curl", "python", "node", "axios", "php", "ruby", "go", "java"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Go and Java examples compiled once for the module; every toolchain present."""
    return build_examples(tmp_path_factory.mktemp("examples-build"))


@pytest.fixture(scope="module")
async def kit(databases: DatabaseFactory, built: Built) -> AsyncIterator[Kit]:
    """The module's gateway, relays and token, running these languages' examples."""
    async with running_kit(databases, _languages(built)) as running:
        yield running


@pytest.mark.parametrize("language", LANGUAGES)
async def test_api_examples_against_a_live_gateway(kit: Kit, language: str) -> None:
    """health, send SMS, status, send OTP and verify OTP examples work end to end, and API
    errors print our error code and message with a non-zero exit."""
    await api_scenario(kit, language)


@pytest.mark.parametrize("language", LANGUAGES)
async def test_queue_list_example_against_a_live_gateway(kit: Kit, language: str) -> None:
    """The queue-list example queues a list (each member its own rendered SMS, the opted-out one
    named as skipped) and prints our error code and message for an unknown placeholder."""
    await list_scenario(kit, language)


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "curl"])
async def test_webhook_receiver_verifies_real_deliveries(kit: Kit, language: str) -> None:
    """The example receiver accepts the gateway's real signed deliveries (also during a secret
    rotation) with a 2xx, and refuses tampered, stale, unsigned and foreign requests with 401."""
    await receiver_scenario(kit, language)


@pytest.fixture
async def captured(kit: Kit) -> AsyncIterator[tuple[str, Receiver]]:
    """A real signed ``webhook.test`` delivery captured by tests/webhook_receiver.py, and the secret."""
    receiver = Receiver()
    await receiver.start()
    try:
        webhook_id, secret = await register_webhook(kit, receiver.url())
        status, _, _ = await kit.api.post(f"/v1/webhooks/{webhook_id}/test")
        assert status == 202
        await receiver.wait_for("/hook", 1)
        yield secret, receiver
    finally:
        await receiver.stop()


async def test_curl_verify_webhook_script(kit: Kit, captured: tuple[str, Receiver], tmp_path: Path) -> None:
    """The shell verifier (openssl) accepts a real captured delivery and rejects a tampered body,
    a foreign secret and a stale timestamp."""
    secret, receiver = captured
    delivery = receiver.on("/hook")[0]
    headers = {k.lower(): v for k, v in delivery.headers.items()}
    script = str(EXAMPLES / "curl" / "verify_webhook.sh")

    async def verify(
        body: bytes, msg_id: str, timestamp: str, signature: str, key: str = secret
    ) -> tuple[int, str]:
        path = tmp_path / "body.json"
        path.write_bytes(body)
        proc = await asyncio.create_subprocess_exec(
            "bash",
            script,
            str(path),
            msg_id,
            timestamp,
            signature,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=kit.env(RELAYGATE_WEBHOOK_SECRET=key),
        )
        async with asyncio.timeout(RUN_TIMEOUT):
            out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode().strip()

    msg_id, ts, sig = headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"]
    code, out = await verify(delivery.body, msg_id, ts, sig)
    assert (code, out) == (0, f"verified webhook.test id={msg_id}")
    code, out = await verify(delivery.body, msg_id, ts, f"v1,AAAA {sig}")
    assert code == 0, out
    code, out = await verify(delivery.body + b" ", msg_id, ts, sig)
    assert (code, out) == (1, "rejected: no matching signature")
    code, out = await verify(
        delivery.body, msg_id, ts, sig, key="whsec_" + base64.b64encode(b"k" * 32).decode()
    )
    assert code == 1, out
    stale = int(time.time()) - 400
    code, out = await verify(delivery.body, msg_id, str(stale), signed(secret, msg_id, stale, delivery.body))
    assert (code, out) == (1, "rejected: timestamp too far from now")
