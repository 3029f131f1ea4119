"""``relaygate accounts show`` and ``accounts update`` in subprocesses, against a running gateway:
the destination policy the operator sets is what the API shows and enforces within the 2 s auth
cache, and bad input exits 2 with a message, changing nothing.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from tests.harness import ApiClient, RunningGateway, make_account
from tests.integration.test_cli import _env, _run


@pytest.mark.slow
async def test_accounts_update_and_show(
    gateway: RunningGateway, database_url: str, session: aiohttp.ClientSession
) -> None:
    """update sets allowed types, countries and OTP caps; show --json prints the API's account
    object; the running gateway enforces the change within its 2 s cache."""
    account_id, token = await make_account(database_url, "shop")
    api = ApiClient(session, gateway.base_url, token)
    env = _env(DATABASE_URL=database_url)
    status, body, _ = await api.post("/v1/sms/send", json={"to": "+19005550123", "message": "hi"})
    assert status == 422  # refused, and the account is now in the gateway's auth cache

    code, out, err = await _run(
        "accounts",
        "update",
        account_id,
        "--allow-number-types",
        "premium_rate,mobile",
        "--countries",
        "us,UZ",
        "--otp-per-number-hour",
        "3",
        "--otp-per-number-day",
        "7",
        env=env,
    )
    assert code == 0, err
    assert "premium_rate" in out and "US,UZ" in out and "3/hour" in out
    changed_at = time.monotonic()

    # The same token sees the change once its cached lookup (2 s) has expired.
    async with asyncio.timeout(5):
        while True:
            status, body, _ = await api.post("/v1/sms/send", json={"to": "+19005550123", "message": "hi"})
            if status == 200:
                break
            assert status == 422, body
            await asyncio.sleep(0.1)
    assert time.monotonic() - changed_at < 2 + 1.5  # TTL plus slack for a busy machine

    code, out, _ = await _run("accounts", "show", account_id, "--json", env=env)
    assert code == 0
    shown = json.loads(out)
    assert shown["id"] == account_id and shown["name"] == "shop"
    assert shown["allowed_number_types"][-1] == "premium_rate"
    assert shown["allowed_countries"] == ["US", "UZ"]
    assert (shown["otp_per_number_hour"], shown["otp_per_number_day"]) == (3, 7)
    status, body, _ = await api.get("/v1/account")
    assert {k: v for k, v in body["account"].items() if k in shown} == shown
    status, body, _ = await api.post("/v1/sms/send", json={"to": "+8801712345678", "message": "hi"})
    assert status == 422 and "BD" in body["error"]["details"]["fields"]["to"]

    code, out, _ = await _run("accounts", "update", account_id, "--all-countries", "--json", env=env)
    assert code == 0 and json.loads(out)["allowed_countries"] == []
    code, out, _ = await _run("accounts", "update", account_id, "--allow-number-types", "", "--json", env=env)
    assert code == 0 and "premium_rate" not in json.loads(out)["allowed_number_types"]
    code, out, _ = await _run("accounts", "show", account_id, env=env)
    assert code == 0 and "countries allowed:    all" in out


async def test_accounts_update_refuses_bad_input(database_url: str) -> None:
    """An unknown type or country exits 2 with a message, as does a flag argparse refuses; an
    unknown account exits 1; nothing changes. (Every rule: tests/unit/test_number_policy.py.)"""
    account_id, _ = await make_account(database_url, "shop")
    env = _env(DATABASE_URL=database_url)
    refusals = [
        (["--allow-number-types", "premium,shared_cost"], "unknown number type 'premium'"),
        (["--countries", "UZ,XX", "--otp-per-number-hour", "5"], "unknown country code 'XX'"),
        (["--countries", "UZ", "--all-countries"], "not allowed with"),
    ]
    # the refused commands are independent of each other: run them at once
    *answers, missing = await asyncio.gather(
        *(_run("accounts", "update", account_id, *args, env=env) for args, _ in refusals),
        _run("accounts", "update", "acc_missing", "--all-countries", env=env),
    )
    for (args, needle), (code, _, err) in zip(refusals, answers, strict=True):
        assert code == 2 and needle in err, (args, err)
    code, _, err = missing
    assert code == 1 and "acc_missing" in err
    code, out, _ = await _run("accounts", "show", account_id, "--json", env=env)
    shown = json.loads(out)
    assert (shown["allowed_countries"], shown["otp_per_number_hour"]) == ([], 10)
    assert "shared_cost" not in shown["allowed_number_types"]


async def test_accounts_list_renew_and_tokens_list(database_url: str, api: ApiClient) -> None:
    """``accounts list``, ``accounts renew`` and ``tokens list`` read and change the same database."""
    env = _env(DATABASE_URL=database_url)
    status, me, _ = await api.get("/v1/account")
    assert status == 200
    account_id = me["account"]["id"]
    # four independent commands, run at once
    listing, renewed, unknown, tokens = await asyncio.gather(
        _run("accounts", "list", "--json", env=env),
        _run("accounts", "renew", account_id, "--expires", "2031-05-31", env=env),
        _run("accounts", "renew", "acc_nope", "--no-expiry", env=env),
        _run("tokens", "list", "--account", account_id, "--json", env=env),
    )
    code, out, _ = listing
    assert code == 0 and account_id in [json.loads(line)["id"] for line in out.splitlines()]
    code, out, _ = renewed
    assert code == 0 and "2031-05-31T23:59:59.999Z" in out
    code, _, err = unknown
    assert code == 1 and "acc_nope" in err
    code, out, _ = tokens
    listed = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and me["token_id"] in [t["id"] for t in listed] and all("token" not in t for t in listed)


async def test_patch_account_profile(api: ApiClient, database_url: str) -> None:
    """PATCH /v1/account renames, switches relay mode and region at once; bad values change nothing."""
    status, body, _ = await api.request(
        "PATCH", "/v1/account", json={"name": "Acme 2", "default_region": "BD"}
    )
    assert status == 200 and body["account"]["name"] == "Acme 2" and body["account"]["default_region"] == "BD"
    status, body, _ = await api.get("/v1/account")
    assert body["account"]["default_region"] == "BD"
    for bad in (
        {"default_region": "XX"},
        {"relay_mode": "sometimes"},
        {"name": ""},
        {"subscription_expires_at": None},
    ):
        status, body, _ = await api.request("PATCH", "/v1/account", json=bad)
        assert status == 422, (bad, body)
    status, body, _ = await api.request("PATCH", "/v1/account", json={"default_region": None})
    assert status == 200 and body["account"]["default_region"] is None and body["account"]["name"] == "Acme 2"
    _, reader = await make_account(database_url, "reader", scopes=["account.read"])
    status, body, _ = await api.with_token(reader).request("PATCH", "/v1/account", json={"name": "x"})
    assert status == 403 and body["error"]["details"]["required_scope"] == "account.manage"
