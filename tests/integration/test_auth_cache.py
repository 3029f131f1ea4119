"""The authenticated-token cache: bounded (least recently used go first), and a revocation
in this process takes effect at once, even for a lookup that was in flight when it happened."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from gateway.access.auth import Authenticator
from gateway.errors import ApiError
from store.database import create_pool
from tests.harness import make_account


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    """The gateway's kind of pool on the test database."""
    pool = await create_pool(database_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


async def _revoke(pool: asyncpg.Pool[Any], account_id: str) -> str:
    """Revoke the account's token in the database; its id."""
    token_id: str = await pool.fetchval(
        "UPDATE access_tokens SET revoked_at = now() WHERE account_id = $1 RETURNING id", account_id
    )
    return token_id


async def test_cache_is_bounded_least_recently_used_first(pool: asyncpg.Pool[Any], database_url: str) -> None:
    """With room for three, five callers leave the three most recently used cached: a token used
    again stays, the least recently used one is looked up again (and then refused once revoked)."""
    auth = Authenticator(pool, rate=1000, burst=1000, cache_size=3)
    accounts = [await make_account(database_url, f"a{k}") for k in range(5)]
    for _, token in accounts[:3]:
        await auth.authenticate(f"Bearer {token}")
    await auth.authenticate(f"Bearer {accounts[0][1]}")  # a0 is now the most recent
    for _, token in accounts[3:]:
        await auth.authenticate(f"Bearer {token}")  # evicts a1, then a2
    assert auth.cached == 3
    for account_id, _ in (accounts[0], accounts[1]):
        await _revoke(pool, account_id)  # not told to the cache: only a lookup sees it
    assert (await auth.authenticate(f"Bearer {accounts[0][1]}")).account.id == accounts[0][0]  # cached
    with pytest.raises(ApiError) as refused:
        await auth.authenticate(f"Bearer {accounts[1][1]}")  # evicted: looked up, revoked
    assert refused.value.code == "unauthorized"


async def test_revocation_takes_effect_at_once(pool: asyncpg.Pool[Any], database_url: str) -> None:
    """A cached token revoked through this process (forget_token) is refused on its next use,
    within the cache's TTL; forget_account does the same for every token of an account."""
    auth = Authenticator(pool, rate=1000, burst=1000, cache_ttl=3600)
    account_id, token = await make_account(database_url)
    await auth.authenticate(f"Bearer {token}")
    auth.forget_token(await _revoke(pool, account_id))
    assert auth.cached == 0
    with pytest.raises(ApiError):
        await auth.authenticate(f"Bearer {token}")
    other_id, other = await make_account(database_url, "other")
    await auth.authenticate(f"Bearer {other}")
    await pool.execute("UPDATE accounts SET status = 'suspended' WHERE id = $1", other_id)
    auth.forget_account(other_id)
    assert (await auth.authenticate(f"Bearer {other}")).account.status == "suspended"


async def test_a_lookup_in_flight_during_a_revocation_is_not_cached(
    pool: asyncpg.Pool[Any], database_url: str
) -> None:
    """A lookup that started before a revocation answers its own request, but is not cached:
    the token's next use asks the database again and is refused."""
    auth = Authenticator(pool, rate=1000, burst=1000, cache_ttl=3600)
    account_id, token = await make_account(database_url)
    lookup = asyncio.create_task(auth.authenticate(f"Bearer {token}"))
    await asyncio.sleep(0)  # the lookup now waits for the database
    token_id = await pool.fetchval("SELECT id FROM access_tokens WHERE account_id = $1", account_id)
    auth.forget_token(token_id)
    assert (await lookup).token_id == token_id
    assert auth.cached == 0
    await _revoke(pool, account_id)
    with pytest.raises(ApiError):
        await auth.authenticate(f"Bearer {token}")
