"""The ``relaygate`` command in subprocesses: serve on the embedded database, accounts, tokens."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
from pathlib import Path

import aiohttp
import pytest

from tests.harness import PYTHON, ApiClient, DatabaseFactory, free_port, make_account, start_gateway


async def _run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "gateway",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYGATE_") and k != "DATABASE_URL"}
    env.update(extra)
    return env


async def test_cli_accounts_and_tokens(database_url: str, session: aiohttp.ClientSession) -> None:
    """accounts create --json prints exactly {account_id, token}; tokens create/revoke work."""
    env = _env(DATABASE_URL=database_url)
    code, out, _ = await _run("accounts", "create", "shop", "--expires", "2030-01-31", "--json", env=env)
    assert code == 0
    created = json.loads(out)
    assert set(created) == {"account_id", "token"} and created["account_id"].startswith("acc_")

    code, out, _ = await _run(
        "tokens", "create", "--account", created["account_id"], "--scopes", "account.read", "--json", env=env
    )
    assert code == 0 and json.loads(out)["scopes"] == ["account.read"]
    token_id = json.loads(out)["token_id"]
    code, _, err = await _run(
        "tokens", "create", "--account", created["account_id"], "--scopes", "root", env=env
    )
    assert code == 2 and "root" in err
    code, _, err = await _run(
        "tokens", "create", "--account", "acc_nope", "--scopes", "account.read", env=env
    )
    assert code == 1 and "acc_nope" in err
    code, out, _ = await _run("tokens", "revoke", token_id, env=env)
    assert code == 0 and token_id in out
    code, _, _ = await _run("tokens", "revoke", "tok_missing", env=env)
    assert code == 1
    code, _, err = await _run("accounts", "create", "x", "--expires", "yesterday", env=env)
    assert code == 2


@pytest.mark.slow
async def test_serve_on_embedded_database_first_run(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    """First serve on an empty data folder prints a working token and cURL line; the CLI shares
    the running server's database; SIGTERM stops it cleanly."""
    port = free_port()
    env = _env(
        RELAYGATE_DATA_DIR=str(tmp_path / "data"),
        RELAYGATE_HTTP_PORT=str(port),
        RELAYGATE_RELAY_PORT=str(free_port()),
        RELAYGATE_LOG_FORMAT="json",
    )
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "gateway",
        "serve",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(60):
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, "".join(lines)
                lines.append(line)
                if "gateway.started" in line:
                    break
        text = "".join(lines)
        token = re.search(r"rgat_[0-9A-Za-z]{36}", text)
        assert token and "curl -H 'Authorization: Bearer" in text
        client = ApiClient(session, f"http://127.0.0.1:{port}/api", token.group(0))
        status, body, _ = await client.get("/v1/account")
        assert status == 200 and body["account"]["name"] == "default"

        code, out, _ = await _run("accounts", "create", "second", "--json", env=env)
        assert code == 0
        status, body, _ = await client.with_token(json.loads(out)["token"]).get("/v1/account")
        assert status == 200 and body["account"]["name"] == "second"
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(proc.stdout.read(), 30)
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0, rest.decode()
    assert "gateway.stopped" in rest.decode()


async def test_cli_pairing_code_pairs_a_relay(database_url: str, session: aiohttp.ClientSession) -> None:
    """`relaygate pairing-code --json` makes a code a phone can spend; without --json it draws the QR."""
    account_id, _ = await make_account(database_url)
    env = _env(DATABASE_URL=database_url, RELAYGATE_PUBLIC_URL="https://sms.example.com/api")
    code, out, _ = await _run("pairing-code", "--account", account_id, "--json", env=env)
    assert code == 0
    created = json.loads(out)
    assert created["qr_payload"].startswith("relaygate://pair?v=1&code=")
    assert "url=https%3A%2F%2Fsms.example.com%2Fapi" in created["qr_payload"]
    running = await start_gateway(database_url)
    try:
        status, paired, _ = await ApiClient(session, running.base_url).post(
            "/v1/relay/app/pair",
            json={"code": created["code"], "name": "p", "model": "m", "app_version": "1"},
        )
        assert status == 200 and paired["device_id"].startswith("dev_")
    finally:
        await running.stop()
    code, out, _ = await _run("pairing-code", "--account", account_id, env=env)
    assert code == 0 and "pairing code:" in out and "█" in out
    code, _, err = await _run("pairing-code", "--account", "acc_missing", env=env)
    assert code == 1 and "acc_missing" in err


@pytest.mark.slow
async def test_data_dir_flag_is_a_path(tmp_path: Path) -> None:
    """``--data-dir`` works like RELAYGATE_DATA_DIR (it used to crash every command)."""
    code, out, err = await _run(
        "--data-dir", str(tmp_path / "data"), "accounts", "create", "shop", "--json", env=_env()
    )
    assert code == 0, err
    assert json.loads(out)["account_id"].startswith("acc_")
    assert (tmp_path / "data" / "pg").is_dir()


async def test_port_in_use_is_a_clear_message_before_any_token(databases: DatabaseFactory) -> None:
    """A taken port: exit 2 naming the port and the setting, no traceback, no token printed."""
    database_url = await databases.create(empty=True)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _env(
            DATABASE_URL=database_url,
            RELAYGATE_HTTP_PORT=str(port),
            RELAYGATE_RELAY_PORT=str(free_port()),
            RELAYGATE_SECRET_KEY="test-secret-key-0123456789abcdef",
        )
        code, out, err = await _run("serve", env=env)
    assert code == 2, (out, err)
    assert str(port) in err and "RELAYGATE_HTTP_PORT" in err, err
    assert "Traceback" not in err + out and "rgat_" not in out, (out, err)
