"""schema.sql: idempotent, upgrades older databases in place, refuses to be downgraded."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from gateway.recipients.search import name_key, search_grams
from store.database import SCHEMA_VERSION, SchemaTooNew, apply_schema, schema_sql
from tests.harness import DatabaseFactory

FIXTURES = Path(__file__).parent.parent / "fixtures"


async def test_schema_applied_twice_is_harmless(databases: DatabaseFactory) -> None:
    """Applying the schema again keeps every row and the version."""
    conn = await asyncpg.connect(await databases.create())
    try:
        await conn.execute("INSERT INTO accounts (id, name) VALUES ('acc_x', 'kept')")
        assert await apply_schema(conn) == SCHEMA_VERSION
        assert await apply_schema(conn) == SCHEMA_VERSION
        assert await conn.fetchval("SELECT name FROM accounts WHERE id = 'acc_x'") == "kept"
    finally:
        await conn.close()


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("schema_v*.sql")), ids=lambda p: p.stem)
async def test_upgrade_from_previous_versions_keeps_data(databases: DatabaseFactory, fixture: Path) -> None:
    """A database made by an earlier release is upgraded in place on start, its data intact."""
    conn = await asyncpg.connect(await databases.create(empty=True))
    try:
        old_version = await apply_schema(conn, fixture.read_text())
        assert old_version <= SCHEMA_VERSION
        await conn.execute("INSERT INTO accounts (id, name) VALUES ('acc_old', 'old customer')")
        await conn.execute(
            "INSERT INTO access_tokens (id, account_id, token_hash, hint, scopes)"
            " VALUES ('tok_old', 'acc_old', '\\x00', 'rgat_x…', '{account.read}')"
        )
        assert await apply_schema(conn) == SCHEMA_VERSION
        assert await conn.fetchval("SELECT name FROM accounts WHERE id = 'acc_old'") == "old customer"
        assert await conn.fetchval("SELECT scopes FROM access_tokens WHERE id = 'tok_old'") == [
            "account.read"
        ]
    finally:
        await conn.close()


async def test_upgrade_to_v8_adds_the_name_characters_to_the_search_grams(databases: DatabaseFactory) -> None:
    """A recipient written by v7 (3-grams only) has exactly the grams v8 writes after the
    upgrade, so short searches that ask the index find it."""
    conn = await asyncpg.connect(await databases.create(empty=True))
    try:
        await apply_schema(conn, (FIXTURES / "schema_v7.sql").read_text())
        key, phone = name_key("Ömer Qul"), "+998901234567"
        v8_grams = search_grams(key, phone)
        v7_grams = [g for g in v8_grams if len(g) != 1]
        await conn.execute("INSERT INTO accounts (id, name) VALUES ('acc_old', 'old customer')")
        await conn.execute(
            "INSERT INTO recipients (id, account_id, name, phone, name_key, search_grams)"
            " VALUES ('rcp_old', 'acc_old', 'Ömer Qul', $1, $2, $3), ('rcp_bare', 'acc_old', '', '+998901234568', '', '{}')",
            phone,
            key,
            v7_grams,
        )
        assert await apply_schema(conn) == SCHEMA_VERSION
        assert sorted(
            await conn.fetchval("SELECT search_grams FROM recipients WHERE id = 'rcp_old'")
        ) == sorted(v8_grams)
        assert await conn.fetchval("SELECT search_grams FROM recipients WHERE id = 'rcp_bare'") == []
        assert await apply_schema(conn) == SCHEMA_VERSION  # once only
        assert len(await conn.fetchval("SELECT search_grams FROM recipients WHERE id = 'rcp_old'")) == len(
            v8_grams
        )
    finally:
        await conn.close()


async def test_newer_schema_is_refused(databases: DatabaseFactory) -> None:
    """A database written by a newer relaygate is not touched by this one."""
    conn = await asyncpg.connect(await databases.create())
    try:
        await conn.execute("UPDATE schema_version SET version = $1", SCHEMA_VERSION + 1)
        with pytest.raises(SchemaTooNew):
            await apply_schema(conn)
    finally:
        await conn.close()


def test_schema_ships_with_the_package() -> None:
    """schema.sql is read from the installed package, and the top-level copy is the same file."""
    top = Path(__file__).parent.parent.parent / "schema.sql"
    assert schema_sql() == top.read_text()
