"""Authentication of API requests: bearer access tokens, scopes, account state, rate limits.

A malformed token (wrong prefix, length or checksum) is refused without touching the
database. Valid lookups are cached for ``cache_ttl`` seconds, at most ``cache_size`` of them
(least recently used go first). Concurrent requests with the same uncached token share one
lookup (under load a token's expiry would otherwise send every request of the next
milliseconds to the database). A revocation or account change through this process's API
drops the entries at once — a lookup that was in flight meanwhile answers the requests waiting
on it but is not cached, and requests that arrive after the change start a lookup of their
own; one made by the CLI or another gateway process takes effect within the TTL (several
processes would need a ``NOTIFY`` on revocation to drop it at once everywhere).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.access.accounts import Account, account_from_row
from gateway.access.ratelimit import Gcra
from gateway.access.tokens import ACCESS_PREFIX, bearer_token, hash_token, is_well_formed
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import ApiError
from gateway.timefmt import rfc3339
from store import accounts as store
from store.accounts import PrincipalRow

__all__ = ["Authenticator", "Principal", "principal_from_row"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the account and the token's scopes."""

    token_id: str
    scopes: frozenset[str]
    account: Account


def principal_from_row(row: PrincipalRow) -> Principal:
    """The :class:`Principal` of a token lookup (API token or dashboard session)."""
    return Principal(
        token_id=row.token_id, scopes=frozenset(row.scopes), account=account_from_row(row.account)
    )


_UNAUTHORIZED = "missing, malformed, unknown or revoked access token"

CACHE_SIZE = 10_000
"""Authenticated tokens kept (each a few hundred bytes)."""


class Authenticator:
    """Turns an ``Authorization`` header into a :class:`Principal` and enforces policy."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        *,
        rate: float,
        burst: int,
        cache_ttl: float = 2.0,
        cache_size: int = CACHE_SIZE,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._ttl = cache_ttl
        self._size = cache_size
        self._cache: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()
        """Token hash → (the caller, monotonic expiry), least recently used first."""
        self._key_of_token: dict[str, bytes] = {}
        self._keys_of_account: dict[str, set[bytes]] = {}
        self._forgets = 0
        """Bumped by every forget: a lookup that overlapped one is not cached."""
        self._lookups: dict[bytes, asyncio.Task[Principal | None]] = {}
        """Token hash → the database lookup in flight that requests for it wait on."""
        self.lookups = 0
        """Database lookups made (for tests and metrics)."""
        self._rates = Gcra(rate, burst, clock.monotonic)

    async def authenticate(self, header: str | None) -> Principal:
        """The caller, or ``unauthorized``."""
        if not header:
            raise ApiError("unauthorized", "Authorization: Bearer <access token> header is required")
        token = bearer_token(header)
        if token is None:
            raise ApiError("unauthorized", _UNAUTHORIZED)
        key = hash_token(token)
        now = self._clock.monotonic()
        cached = self._cache.get(key)
        if cached is not None:
            if cached[1] > now:
                self._cache.move_to_end(key)
                return cached[0]  # only tokens the database accepted are cached: no checksum needed
            self._drop(key)
        if not is_well_formed(token, ACCESS_PREFIX):
            raise ApiError("unauthorized", _UNAUTHORIZED)
        lookup = self._lookups.get(key)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up(key, now))
            self._lookups[key] = lookup
            lookup.add_done_callback(lambda done: self._lookup_done(key, done))
        principal = await asyncio.shield(lookup)  # one caller gone does not cancel the others' lookup
        if principal is None:
            raise ApiError("unauthorized", _UNAUTHORIZED)
        return principal

    async def _look_up(self, key: bytes, now: float) -> Principal | None:
        self.lookups += 1
        forgets = self._forgets
        row = await store.authenticate(self._pool, token_hash=key)
        if row is None:
            return None
        principal = principal_from_row(row)
        if forgets == self._forgets:  # no revocation or account change since the lookup began
            self._remember(key, principal, now + self._ttl)
        return principal

    def _lookup_done(self, key: bytes, lookup: asyncio.Task[Principal | None]) -> None:
        if self._lookups.get(key) is lookup:
            del self._lookups[key]
        if not lookup.cancelled():
            lookup.exception()  # retrieved here: every waiter may have gone

    def _remember(self, key: bytes, principal: Principal, until: float) -> None:
        self._drop(key)
        while len(self._cache) >= self._size:
            self._drop(next(iter(self._cache)))
        self._cache[key] = (principal, until)
        self._key_of_token[principal.token_id] = key
        self._keys_of_account.setdefault(principal.account.id, set()).add(key)

    def _drop(self, key: bytes) -> None:
        entry = self._cache.pop(key, None)
        if entry is None:
            return
        principal = entry[0]
        self._key_of_token.pop(principal.token_id, None)
        keys = self._keys_of_account.get(principal.account.id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._keys_of_account[principal.account.id]

    @property
    def cached(self) -> int:
        """Tokens in the cache now."""
        return len(self._cache)

    def _forget(self) -> None:
        self._forgets += 1
        self._lookups.clear()  # a lookup that began before the change answers only its own waiters

    def forget_token(self, token_id: str) -> None:
        """Drop cached lookups of a token (after revocation), at once."""
        self._forget()
        key = self._key_of_token.get(token_id)
        if key is not None:
            self._drop(key)

    def forget_account(self, account_id: str) -> None:
        """Drop cached lookups of an account's tokens (after the account changed), at once."""
        self._forget()
        for key in list(self._keys_of_account.get(account_id, ())):
            self._drop(key)

    async def authorize(
        self, header: str | None, scope: str, *, sending: bool = False
    ) -> tuple[Principal, dict[str, str]]:
        """Authenticate, count the request against the token's rate, then check scope, account
        status and subscription (for sending). Returns the caller and the ``RateLimit-*``
        headers every answer to it carries (an ApiError raised here carries them too)."""
        principal = await self.authenticate(header)
        return principal, self.permit(principal, scope, sending=sending)

    def permit(self, principal: Principal, scope: str, *, sending: bool = False) -> dict[str, str]:
        """The checks of :meth:`authorize` for a caller already known (the dashboard's session):
        rate, scope, account status, subscription. Returns the ``RateLimit-*`` headers."""
        verdict = self._rates.take(principal.token_id)
        headers = verdict.headers()
        try:
            self._check(principal, scope, sending=sending, allowed=verdict.allowed, wait=verdict.retry_after)
        except ApiError as exc:
            exc.headers.update(headers)
            raise
        return headers

    def _check(self, principal: Principal, scope: str, *, sending: bool, allowed: bool, wait: float) -> None:
        if not allowed:
            raise ApiError.rate_limited(
                wait,
                "API request rate limit exceeded for this token",
                reason="token_rate",
                limit_per_second=self._rates.rate,
            )
        if scope not in principal.scopes:
            raise ApiError("forbidden", f"this token lacks the {scope!r} scope", {"required_scope": scope})
        account = principal.account
        if account.status != "active":
            raise ApiError("forbidden", "this account is suspended", {"account_status": account.status})
        if sending and not account.subscription_active(self._clock.now()):
            raise ApiError(
                "subscription_expired",
                "the account's subscription has expired; renew it to send",
                {
                    "expired_at": rfc3339(account.subscription_expires_at)
                    if account.subscription_expires_at
                    else None
                },
            )
