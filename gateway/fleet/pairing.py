"""Pairing codes: generation, parsing of typed codes and QR payloads, and the pairing itself.

A code is 8 characters from an alphabet without look-alikes (no 0/O, 1/I/L), shown as
``ABCD-EFGH``: about 39.6 bits. The first half is a public *lookup* key, the second half a
secret stored only as a hash. A wrong second half counts as a failed try against that code,
and after 5 failed tries the code is dead, so guessing costs at most 5 tries per live code.
Codes are single use and expire (10 minutes by default).

The QR payload carries the same code and the API base URL so the app needs no typing:
``relaygate://pair?v=1&code=ABCD-EFGH&url=http%3A%2F%2Fhost%3A8080%2Fapi``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import asyncpg

from gateway.access.tokens import DEVICE_PREFIX, generate_token, hash_token
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.ids import new_id
from store import devices as store
from store.accounts import account_by_id
from store.database import Db

__all__ = [
    "CODE_ALPHABET",
    "MAX_FAILED_TRIES",
    "PairingCode",
    "PairingFailed",
    "create_pairing_code",
    "normalise_code",
    "pair_device",
    "parse_qr_payload",
    "qr_payload",
    "register_device",
]

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
MAX_FAILED_TRIES = 5
DEFAULT_TTL = timedelta(minutes=10)


class PairingFailed(Exception):
    """The code is unknown, expired, used, or dead after too many tries (one answer for all)."""


@dataclass(frozen=True, slots=True)
class PairingCode:
    """A freshly created code (the only time its text exists)."""

    id: str
    code: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PairedDevice:
    """The result of a successful pairing: the device token is shown only now."""

    device_id: str
    account_id: str
    device_token: str
    name: str


def _secret_hash(lookup: str, secret: str) -> bytes:
    return hashlib.sha256(f"{lookup}:{secret}".encode()).digest()


def normalise_code(text: str) -> str | None:
    """``"abcd efgh"`` → ``"ABCDEFGH"``; None when it cannot be a code."""
    cleaned = "".join(ch for ch in text.upper() if ch not in " -\t")
    if len(cleaned) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in cleaned):
        return None
    return cleaned


def qr_payload(code: str, api_base_url: str) -> str:
    """The compact string a QR code carries: the code and where to send it."""
    return f"relaygate://pair?v=1&code={code}&url={quote(api_base_url, safe='')}"


def parse_qr_payload(payload: str) -> str | None:
    """The code inside a QR payload (normalised), or None if the payload is not ours."""
    parts = urlsplit(payload)
    if parts.scheme != "relaygate" or parts.netloc != "pair":
        return None
    query = parse_qs(parts.query)
    if query.get("v") != ["1"] or len(query.get("code", [])) != 1:
        return None
    return normalise_code(query["code"][0])


async def create_pairing_code(
    db: Db, account_id: str, *, ttl: timedelta = DEFAULT_TTL, clock: Clock = SYSTEM_CLOCK
) -> PairingCode:
    """A new single-use code for ``account_id``, expiring ``ttl`` after ``clock``'s now (whether
    it is still live is then judged by the database's ``now()``)."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    lookup, secret = raw[:4], raw[4:]
    expires_at = clock.now() + ttl
    code_id = new_id("pair")
    await store.insert_pairing_code(
        db,
        code_id=code_id,
        account_id=account_id,
        lookup=lookup,
        secret_hash=_secret_hash(lookup, secret),
        expires_at=expires_at,
    )
    return PairingCode(id=code_id, code=f"{lookup}-{secret}", expires_at=expires_at)


async def pair_device(
    pool: asyncpg.Pool[Any],
    code: str,
    *,
    name: str,
    model: str,
    app_version: str,
    token_prefix: str = DEVICE_PREFIX,
) -> PairedDevice:
    """Spend ``code`` (normalised) on a new device; raise :class:`PairingFailed` otherwise.

    ``token_prefix`` tells the kinds of relay apart: ``rgd`` tokens open WebSocket sessions,
    SMSGate phones get ``rgm`` tokens that only the mobile API accepts."""
    lookup, secret = code[:4], code[4:]
    async with pool.acquire() as conn, conn.transaction():
        rows = await store.lock_live_codes(conn, lookup=lookup, max_failed_tries=MAX_FAILED_TRIES)
        wanted = _secret_hash(lookup, secret)
        match = next((r for r in rows if secrets.compare_digest(r.secret_hash, wanted)), None)
        if match is None:
            # committed with the transaction: the failed try counts even though pairing fails
            if rows:
                await store.count_pairing_failures(conn, code_ids=[r.id for r in rows])
        else:
            token = generate_token(token_prefix)
            device_id = new_id("dev")
            await store.insert_device(
                conn,
                device_id=device_id,
                account_id=match.account_id,
                name=name,
                model=model,
                app_version=app_version,
                token_hash=hash_token(token),
            )
            await store.mark_code_used(conn, code_id=match.id, device_id=device_id)
    if match is None:
        raise PairingFailed
    return PairedDevice(device_id=device_id, account_id=match.account_id, device_token=token, name=name)


async def register_device(
    pool: asyncpg.Pool[Any], account_id: str, *, name: str, model: str, app_version: str, token_prefix: str
) -> PairedDevice | None:
    """A new device of ``account_id`` without a code (an operator's registration secret vouched
    for it); None if the account does not exist."""
    token = generate_token(token_prefix)
    device_id = new_id("dev")
    async with pool.acquire() as conn, conn.transaction():
        if await account_by_id(conn, account_id=account_id) is None:
            return None
        await store.insert_device(
            conn,
            device_id=device_id,
            account_id=account_id,
            name=name,
            model=model,
            app_version=app_version,
            token_hash=hash_token(token),
        )
    return PairedDevice(device_id=device_id, account_id=account_id, device_token=token, name=name)
