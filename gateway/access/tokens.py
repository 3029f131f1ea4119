"""Access tokens and device tokens: format, generation, checksum and hashing (pure).

A token is ``<prefix>_<30 random base62 chars><6-char base62 CRC32 checksum>``: 178 random
bits, and a typo or a truncated paste is refused by the checksum without a database query.
Only the SHA-256 of a token is stored. Prefixes keep the two kinds apart: ``rgat`` tokens
call the customer API, ``rgd`` tokens open relay sockets, and neither is accepted by the other.
"""

from __future__ import annotations

import hashlib
import secrets
import zlib

__all__ = [
    "ACCESS_PREFIX",
    "DEVICE_PREFIX",
    "bearer_token",
    "generate_token",
    "hash_token",
    "is_well_formed",
    "token_hint",
]

ACCESS_PREFIX = "rgat"
DEVICE_PREFIX = "rgd"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_CHARS = 30
_CHECK_CHARS = 6


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), _CHECK_CHARS)


def generate_token(prefix: str) -> str:
    """A new random token of the given kind."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_CHARS))
    return f"{prefix}_{body}{_checksum(body)}"


def is_well_formed(token: str, prefix: str) -> bool:
    """Shape and checksum check: cheap, constant work, no database."""
    head = prefix + "_"
    if len(token) != len(head) + _RANDOM_CHARS + _CHECK_CHARS or not token.startswith(head):
        return False
    rest = token[len(head) :]
    if not rest.isascii() or not rest.isalnum():
        return False
    body, check = rest[:_RANDOM_CHARS], rest[_RANDOM_CHARS:]
    return secrets.compare_digest(_checksum(body), check)


def hash_token(token: str) -> bytes:
    """The value stored in the database (SHA-256; tokens carry enough entropy for a plain hash)."""
    return hashlib.sha256(token.encode("ascii")).digest()


def token_hint(token: str) -> str:
    """A short, non-secret label such as ``rgat_Ab3d…`` for listings."""
    prefix, _, rest = token.partition("_")
    return f"{prefix}_{rest[:4]}…"


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None for any other shape."""
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token and token.isascii() else None
