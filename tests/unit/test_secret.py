"""The server secret: keyed hashes and sealed bodies."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from gateway.secret import ServerSecret, load_secret


def test_keyed_hash_depends_on_key_and_parts() -> None:
    """Same key and parts give the same hash; another key or part does not."""
    a, b = ServerSecret(b"k" * 32), ServerSecret(b"j" * 32)
    assert a.keyed_hash("otp_1", "123456") == a.keyed_hash("otp_1", "123456")
    assert a.keyed_hash("otp_1", "123456") != b.keyed_hash("otp_1", "123456")
    assert a.keyed_hash("otp_1", "123456") != a.keyed_hash("otp_1", "123457")
    assert a.keyed_hash("a\x1fb") == a.keyed_hash("a", "b")  # the separator is reserved


def test_seal_round_trip_and_binding() -> None:
    """A sealed text opens only with the same secret and context, and hides the text."""
    secret = ServerSecret(b"k" * 32)
    sealed = secret.seal("Your code is 482913", "req_1")
    assert b"482913" not in sealed
    assert secret.unseal(sealed, "req_1") == "Your code is 482913"
    with pytest.raises(InvalidTag):
        secret.unseal(sealed, "req_2")
    with pytest.raises(InvalidTag):
        ServerSecret(b"j" * 32).unseal(sealed, "req_1")


def test_secret_file_is_created_once(tmp_path: Path) -> None:
    """Without a configured key, one is generated into the data folder (0600) and reused."""
    first = load_secret(None, tmp_path)
    second = load_secret(None, tmp_path)
    assert first.keyed_hash("x") == second.keyed_hash("x")
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert load_secret("configured-secret-value", tmp_path).keyed_hash("x") != first.keyed_hash("x")
    with pytest.raises(ValueError):
        load_secret("short", tmp_path)
