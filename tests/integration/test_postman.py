"""The Postman collection (docs/postman/): generated from the OpenAPI document and committed in
sync, and run whole by newman against a live gateway with simulated relays, every request and
every assertion green.

The newman run is skipped only when ``RELAYGATE_EXAMPLE_TESTS=0``; a missing newman is a
failure (``.ci/run`` installs it with ``npm ci`` in docs/postman).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import gateway.otp.service
from gateway.api import ENDPOINTS
from gateway.api.openapi import build_openapi
from gateway.api.openapi import render as render_openapi
from gateway.api.postman import (
    COLLECTION_FILE,
    ENVIRONMENT_FILE,
    FIRST_RUN,
    build_collection,
    build_environment,
    render,
)
from gateway.sim.relay import RelayFleet
from tests.harness import eventually, fleet_options, make_account, start_gateway
from tests.webhook_receiver import Receiver

POSTMAN = Path(__file__).resolve().parents[2] / "docs" / "postman"
NEWMAN = POSTMAN / "node_modules" / ".bin" / "newman"
NEWMAN_TIMEOUT = 60.0
"""Seconds the whole newman run may take (it takes a few)."""

_REAL_CODE = "135790"
"""The OTP code the gateway generates in this test (randomness mocked): never one the
collection tries, so its wrong-code checks cannot pass or fail by chance."""


def _document() -> dict[str, Any]:
    return dict(json.loads(render_openapi(build_openapi(ENDPOINTS))))


def test_committed_files_are_generated() -> None:
    """docs/postman/ holds exactly what ``python -m gateway.api.postman docs/postman`` writes
    from the committed docs/openapi.json."""
    committed = json.loads((POSTMAN.parent / "openapi.json").read_bytes())
    assert committed == _document()
    stale = "stale: python -m gateway.api.postman docs/postman"
    assert (POSTMAN / COLLECTION_FILE).read_bytes() == render(build_collection(committed)), stale
    assert (POSTMAN / ENVIRONMENT_FILE).read_bytes() == render(build_environment()), stale


def test_collection_covers_every_operation_once() -> None:
    """Every operation is one request of its tag's folder, with the collection's bearer auth
    unless the operation needs no token, and a test of its success status."""
    document = _document()
    collection = build_collection(document)
    assert collection["info"]["schema"].endswith("/v2.1.0/collection.json")
    folders = {f["name"]: f["item"] for f in collection["item"]}
    assert next(iter(folders)) == "First run"
    assert [r["name"] for r in folders["First run"]] == [
        next(
            op["summary"]
            for ops in document["paths"].values()
            for op in ops.values()
            if op["operationId"] == op_id
        )
        for op_id, _ in FIRST_RUN
    ]
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            (tag,) = op["tags"]
            matches = [r for r in folders[tag] if r["name"] == op["summary"]]
            assert len(matches) == 1, op["operationId"]
            request = matches[0]["request"]
            assert request["method"] == method.upper()
            assert request["url"]["raw"].startswith("{{base_url}}" + path.split("{")[0])
            assert ("auth" in request) == (not op["security"])
            status = min(s for s in op["responses"] if s.startswith("2"))
            script = "\n".join(matches[0]["event"][0]["script"]["exec"])
            assert f"pm.response.to.have.status({status});" in script


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A real webhook receiver for the collection's ``{{webhook_url}}``."""
    running = Receiver()
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.mark.skipif(os.environ.get("RELAYGATE_EXAMPLE_TESTS") == "0", reason="RELAYGATE_EXAMPLE_TESTS=0")
async def test_newman_runs_the_whole_collection_green(
    database_url: str, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """newman runs every request of the collection against a fresh account on a live gateway
    with two simulated relays: no failed request, assertion or script; the gateway really sent
    the SMS and the webhook test event."""
    assert NEWMAN.exists(), "newman missing: (cd docs/postman && npm ci)"

    class _Codes:
        @staticmethod
        def randbelow(n: int) -> int:
            return int(_REAL_CODE) % n

    monkeypatch.setattr(gateway.otp.service, "secrets", _Codes)
    running = await start_gateway(database_url)
    _, token = await make_account(database_url)
    fleet = await RelayFleet.start(fleet_options(running, token, 2))
    try:
        environment = json.loads((POSTMAN / ENVIRONMENT_FILE).read_bytes())
        given = {"base_url": running.base_url, "token": token, "webhook_url": receiver.url()}
        for value in environment["values"]:
            value["value"] = given.get(value["key"], value["value"])
        env_file = tmp_path / "environment.json"
        env_file.write_text(json.dumps(environment))
        report_file = tmp_path / "report.json"
        proc = await asyncio.create_subprocess_exec(
            str(NEWMAN),
            "run",
            str(POSTMAN / COLLECTION_FILE),
            "-e",
            str(env_file),
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            str(report_file),
            "--timeout-request",
            "10000",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            async with asyncio.timeout(NEWMAN_TIMEOUT):
                out, _ = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        output = out.decode(errors="replace")
        assert proc.returncode == 0, output
        run = json.loads(report_file.read_bytes())["run"]
        stats = run["stats"]
        assert run["failures"] == [], output
        assert stats["requests"]["failed"] == 0 and stats["assertions"]["failed"] == 0, output
        assert stats["testScripts"]["failed"] == 0 and stats["prerequestScripts"]["failed"] == 0, output
        operations = sum(len(ops) for ops in _document()["paths"].values())
        assert stats["requests"]["total"] == len(run["executions"]) == operations + len(FIRST_RUN)
        assert stats["assertions"]["total"] >= 2 * stats["requests"]["total"]

        # what the gateway recorded: SMS handed to the relays (two sends, two OTPs), the
        # webhook test delivered (and redelivered) to the registered URL; the list send's one
        # item (`to` itself is opted out by then) goes out unless the cancel right after it
        # came first
        async def all_sent() -> bool:
            return bool(sum(r["to"] == "+998901234567" for r in fleet.sent) >= 4)

        await eventually(all_sent, timeout=10.0, what="both SMS and both OTPs on a relay")
        to_others = [r["to"] for r in fleet.sent if r["to"] != "+998901234567"]
        assert sum(r["to"] == "+998901234567" for r in fleet.sent) == 4, fleet.sent
        assert to_others in ([], ["+998907654321"]), fleet.sent
        assert sum(_REAL_CODE in r["message"] for r in fleet.sent) == 2, fleet.sent
        tests = [d for d in await receiver.wait_for("/hook", 2) if b'"webhook.test"' in d.body]
        assert tests, receiver.on("/hook")
    finally:
        await fleet.stop()
        await running.stop()
