"""The server secret and what is built on it: keyed hashes (OTP codes) and sealed message
bodies (an OTP's SMS text at rest).

The secret comes from ``RELAYGATE_SECRET_KEY`` or, by default, from ``DATA_DIR/secret.key``
(32 random bytes created on first start, mode 0600). Every gateway sharing a database must use
the same secret, or OTP codes and sealed bodies of the others cannot be checked or read.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["ServerSecret", "load_secret"]

_NONCE = 12


class ServerSecret:
    """Keyed operations under one server secret."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the server secret must be at least 16 bytes")
        self._mac_key = hmac.new(key, b"relaygate/hmac", hashlib.sha256).digest()
        self._aead = AESGCM(hmac.new(key, b"relaygate/seal", hashlib.sha256).digest())

    def keyed_hash(self, *parts: str) -> bytes:
        """HMAC-SHA256 of the parts (unambiguously joined)."""
        return hmac.new(self._mac_key, "\x1f".join(parts).encode(), hashlib.sha256).digest()

    def seal(self, plaintext: str, context: str) -> bytes:
        """Encrypt ``plaintext`` bound to ``context`` (e.g. the message id): nonce + ciphertext."""
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())

    def unseal(self, sealed: bytes, context: str) -> str:
        """The plaintext of :meth:`seal`; raises if the secret or context differ."""
        return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], context.encode()).decode()


def load_secret(configured: str | None, data_dir: Path) -> ServerSecret:
    """From the setting, else from (or newly into) ``data_dir/secret.key``."""
    if configured:
        return ServerSecret(configured.encode())
    path = data_dir / "secret.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
    return ServerSecret(path.read_bytes())
