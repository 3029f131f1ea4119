"""The integration kit's examples beyond the eight executed in test_examples.py: Kotlin is
compiled with kotlinc and then executed against a live gateway like the others; C# is compiled
with Mono's mcs; the Laravel files are syntax-checked with ``php -l``. Flutter/Dart has no
checker installable here (no Dart SDK in Debian's or npm's registries), see docs/examples/README.md.

Skipped only when ``RELAYGATE_EXAMPLE_TESTS=0``; a missing toolchain is a failure.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.examples.scenarios import (
    Kit,
    Language,
    api_scenario,
    list_scenario,
    receiver_scenario,
    running_kit,
)
from tests.examples.toolchains import EXAMPLES, build_kotlin, check_csharp, check_php_syntax
from tests.harness import DatabaseFactory

pytestmark = pytest.mark.skipif(
    os.environ.get("RELAYGATE_EXAMPLE_TESTS") == "0", reason="RELAYGATE_EXAMPLE_TESTS=0"
)

KOTLIN_MAINS = {
    "health": "relaygate.HealthKt",
    "send_sms": "relaygate.SendSmsKt",
    "message_status": "relaygate.MessageStatusKt",
    "send_otp": "relaygate.SendOtpKt",
    "verify_otp": "relaygate.VerifyOtpKt",
    "queue_list": "relaygate.QueueListKt",
    "webhook_receiver": "relaygate.WebhookReceiverKt",
}


@pytest.fixture(scope="module")
def kotlin_jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Kotlin examples compiled once for the module."""
    return build_kotlin(tmp_path_factory.mktemp("kotlin-build"))


@pytest.fixture(scope="module")
async def kit(databases: DatabaseFactory, kotlin_jar: Path) -> AsyncIterator[Kit]:
    """The module's gateway, relays and token, running the Kotlin examples."""
    jar = str(kotlin_jar)
    kotlin = Language(
        "kotlin",
        lambda action, args: ["java", "-cp", jar, KOTLIN_MAINS[action], *args],
        lambda port: ["java", "-cp", jar, KOTLIN_MAINS["webhook_receiver"]],
    )
    async with running_kit(databases, {"kotlin": kotlin}) as running:
        yield running


async def test_kotlin_api_examples_against_a_live_gateway(kit: Kit) -> None:
    """The Kotlin health, send SMS, status, send OTP and verify OTP examples work end to end and
    print our error code and message on a refusal."""
    await api_scenario(kit, "kotlin")


async def test_kotlin_queue_list_example_against_a_live_gateway(kit: Kit) -> None:
    """The Kotlin queue-list example queues a list and prints our error for an unknown placeholder."""
    await list_scenario(kit, "kotlin")


async def test_kotlin_webhook_receiver_verifies_real_deliveries(kit: Kit) -> None:
    """The Kotlin receiver accepts real signed deliveries (also during a rotation) and refuses
    tampered, stale, unsigned and foreign requests."""
    await receiver_scenario(kit, "kotlin")


def test_csharp_examples_compile(tmp_path: Path) -> None:
    """The C# examples compile with warnings as errors (mcs, System.Net.Http, System.Text.Json's signatures)."""
    exe = check_csharp(tmp_path)
    assert exe.stat().st_size > 0


def test_laravel_examples_are_valid_php() -> None:
    """Every Laravel example file passes ``php -l`` (config, service, command, middleware, controller, route)."""
    checked = {p.relative_to(EXAMPLES / "laravel").as_posix() for p in check_php_syntax(EXAMPLES / "laravel")}
    assert {
        "config/services.php",
        "app/Services/Relaygate.php",
        "app/Services/RelaygateException.php",
        "app/Console/Commands/RelaygateCommand.php",
        "app/Http/Middleware/VerifyRelaygateWebhook.php",
        "app/Http/Controllers/RelaygateWebhookController.php",
        "routes/api.php",
    } <= checked
