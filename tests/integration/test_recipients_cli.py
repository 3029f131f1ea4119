"""``relaygate recipients`` in subprocesses: CSV import with its progress bar and report, the
all-or-nothing flag, and opt-out / opt-in by number."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

from tests.harness import make_account
from tests.integration.test_cli import _env, _run


@pytest.mark.slow
async def test_cli_import_writes_through_the_domain_in_chunks(database_url: str, tmp_path: Path) -> None:
    """12,000 rows (three chunks) are imported with a progress bar (lines written of the
    file's lines); a second run finds them
    unchanged; --all-or-nothing refuses a file with a bad row and stores nothing."""
    account_id, _ = await make_account(database_url, region="UZ")
    env = _env(DATABASE_URL=database_url)
    rows = "".join(f"Client {i},90{i:07d},vip;cli\n" for i in range(12_000))
    good = tmp_path / "clients.csv"
    good.write_bytes(b"\xef\xbb\xbfname,phone,tags\n" + rows.encode() + b"Broken,12,\n")
    code, out, err = await _run("recipients", "import", str(good), "--account", account_id, "--json", env=env)
    assert code == 0, err
    report = json.loads(out)
    assert (report["imported"], report["updated"], report["unchanged"]) == (12_000, 0, 0)
    assert report["errors"] == [{"line": 12_002, "reason": report["errors"][0]["reason"]}]
    assert "5,001/12,002 lines" in err and "12,002/12,002 lines\n" in err
    code, out, err = await _run("recipients", "import", str(good), "--account", account_id, env=env)
    assert code == 0 and "0 imported, 0 updated, 12000 unchanged, 1 refused" in out, (out, err)
    assert "line 12002" in err

    bad = tmp_path / "bad.csv"
    bad.write_text("name,phone\nNew One,+998911111111\nBroken,12\n")
    code, _, err = await _run(
        "recipients", "import", str(bad), "--account", account_id, "--all-or-nothing", env=env
    )
    assert code == 1 and "nothing was imported" in err
    conn = await asyncpg.connect(database_url)
    try:
        assert (
            await conn.fetchval("SELECT count(*) FROM recipients WHERE account_id = $1", account_id) == 12_000
        )
        assert await conn.fetchval("SELECT tags FROM recipients WHERE phone = '+998900000007'") == [
            "vip",
            "cli",
        ]
    finally:
        await conn.close()
    code, _, err = await _run(
        "recipients", "import", str(tmp_path / "none.csv"), "--account", account_id, env=env
    )
    assert code == 2
    code, _, err = await _run("recipients", "import", str(good), "--account", "acc_nope", env=env)
    assert code == 1 and "acc_nope" in err


async def test_cli_opt_out_and_opt_in(database_url: str) -> None:
    """opt-out marks a number (adding it to the directory if new); opt-in undoes it."""
    account_id, _ = await make_account(database_url, region="UZ")
    env = _env(DATABASE_URL=database_url)
    code, out, err = await _run("recipients", "opt-out", "90 123 45 67", "--account", account_id, env=env)
    assert code == 0 and "+998901234567" in out and "opted out" in out, err
    conn = await asyncpg.connect(database_url)
    try:
        query = "SELECT opted_out FROM recipients WHERE account_id = $1 AND phone = '+998901234567'"
        assert await conn.fetchval(query, account_id) is True
        code, out, _ = await _run("recipients", "opt-in", "+998901234567", "--account", account_id, env=env)
        assert code == 0 and "opted back in" in out
        assert await conn.fetchval(query, account_id) is False
        code, out, _ = await _run("recipients", "opt-in", "+998901234568", "--account", account_id, env=env)
        assert code == 0 and "not opted out" in out
        assert await conn.fetchval("SELECT count(*) FROM recipients WHERE account_id = $1", account_id) == 1
    finally:
        await conn.close()
    code, _, err = await _run("recipients", "opt-out", "12", "--account", account_id, env=env)
    assert code == 2 and "12" in err
