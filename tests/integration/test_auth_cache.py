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
from store.database import Db, create_pool
from tests.harness import make_account


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    """The gateway's kind of pool on the test database."""
    pool = await create_pool(database_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


async def _revoke(pool: Db, account_id: str) -> str:
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


async def test_concurrent_requests_share_one_lookup(pool: asyncpg.Pool[Any], database_url: str) -> None:
    """Fifty concurrent requests with one uncached token make one database lookup; an unknown
    (well-formed) token shared by many is refused for each of them after one lookup too."""
    auth = Authenticator(pool, rate=1000, burst=1000)
    account_id, token = await make_account(database_url)
    principals = await asyncio.gather(*(auth.authenticate(f"Bearer {token}") for _ in range(50)))
    assert {p.account.id for p in principals} == {account_id}
    assert auth.lookups == 1
    await _revoke(pool, account_id)
    auth.forget_account(account_id)
    refused = await asyncio.gather(
        *(auth.authenticate(f"Bearer {token}") for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, ApiError) and r.code == "unauthorized" for r in refused)
    assert auth.lookups == 2


async def test_a_caller_gone_does_not_cancel_the_shared_lookup(
    pool: asyncpg.Pool[Any], database_url: str
) -> None:
    """The request that started a lookup is cancelled (its client went away): the others
    waiting on the same lookup still get their answer."""
    auth = Authenticator(pool, rate=1000, burst=1000)
    account_id, token = await make_account(database_url)
    first = asyncio.create_task(auth.authenticate(f"Bearer {token}"))
    await asyncio.sleep(0)
    second = asyncio.create_task(auth.authenticate(f"Bearer {token}"))
    await asyncio.sleep(0)
    first.cancel()
    assert (await second).account.id == account_id
    assert first.cancelled()
    assert auth.lookups == 1


async def test_a_request_after_a_revocation_does_not_join_the_earlier_lookup(database_url: str) -> None:
    """A request that arrives after a revocation does not wait on a lookup that began before
    it: it asks the database itself. The pool's only connection is held so that the first
    lookup is surely still in flight when the token is revoked."""
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        auth = Authenticator(pool, rate=1000, burst=1000, cache_ttl=3600)
        account_id, token = await make_account(database_url)
        conn = await pool.acquire()
        before = asyncio.create_task(auth.authenticate(f"Bearer {token}"))
        await asyncio.sleep(0.05)  # waiting for the pool
        assert auth.lookups == 1 and not before.done()
        auth.forget_token(await _revoke(conn, account_id))
        after = asyncio.create_task(auth.authenticate(f"Bearer {token}"))
        await asyncio.sleep(0.05)
        assert auth.lookups == 2
        await pool.release(conn)
        for request in (before, after):
            with pytest.raises(ApiError):
                await request  # both read the revoked token
    finally:
        await pool.close()
