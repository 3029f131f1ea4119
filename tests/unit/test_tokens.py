"""Access/device token format: randomness, checksum, prefixes, hashing."""

from __future__ import annotations

from gateway.access.tokens import (
    ACCESS_PREFIX,
    DEVICE_PREFIX,
    generate_token,
    hash_token,
    is_well_formed,
    token_hint,
)


def test_generated_token_is_well_formed_and_unique() -> None:
    """Tokens carry their prefix, pass their own checksum and do not repeat."""
    tokens = {generate_token(ACCESS_PREFIX) for _ in range(200)}
    assert len(tokens) == 200
    assert all(t.startswith("rgat_") and is_well_formed(t, ACCESS_PREFIX) for t in tokens)


def test_checksum_catches_a_typo() -> None:
    """Changing any one character breaks the checksum."""
    token = generate_token(ACCESS_PREFIX)
    for i in range(len("rgat_"), len(token)):
        swapped = "A" if token[i] != "A" else "B"
        assert not is_well_formed(token[:i] + swapped + token[i + 1 :], ACCESS_PREFIX)


def test_malformed_shapes_are_refused() -> None:
    """Wrong prefix, length, characters or kind are refused without any lookup."""
    good = generate_token(ACCESS_PREFIX)
    assert not is_well_formed(good[:-1], ACCESS_PREFIX)
    assert not is_well_formed(good + "x", ACCESS_PREFIX)
    assert not is_well_formed("rgat_" + "!" * 36, ACCESS_PREFIX)
    assert not is_well_formed("", ACCESS_PREFIX)
    assert not is_well_formed(good, DEVICE_PREFIX)
    assert not is_well_formed(generate_token(DEVICE_PREFIX), ACCESS_PREFIX)
    assert not is_well_formed("rgat_" + "é" * 36, ACCESS_PREFIX)


def test_hash_is_stable_and_hint_reveals_little() -> None:
    """The stored hash is deterministic, differs per token, and the hint is a short prefix."""
    a, b = generate_token(ACCESS_PREFIX), generate_token(ACCESS_PREFIX)
    assert hash_token(a) == hash_token(a) != hash_token(b)
    assert len(hash_token(a)) == 32
    assert token_hint(a) == a[:9] + "…"


def test_bearer_token_parsing() -> None:
    """Only ``Bearer <ascii token>`` yields a token; any other header shape yields None."""
    from gateway.access.tokens import bearer_token

    assert bearer_token("Bearer rgat_x") == "rgat_x"
    assert bearer_token("bearer  rgat_x ") == "rgat_x"
    for header in [None, "", "Bearer", "Basic abc", "rgat_x", "Bearer rgat_é"]:
        assert bearer_token(header) is None, header
