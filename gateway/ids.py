"""Prefixed ULIDs: globally unique, time-ordered ids such as ``acc_01HV...`` and ``req_01HV...``.

Ids are global (never per-process counters) so several gateway processes can share one database.
"""

from __future__ import annotations

from ulid import ULID

__all__ = ["has_prefix", "id_floor", "id_time", "new_id"]


def new_id(prefix: str) -> str:
    """A new id ``<prefix>_<ULID>``."""
    return f"{prefix}_{ULID()}"


def has_prefix(value: str, prefix: str) -> bool:
    """Whether ``value`` looks like an id of the given kind (cheap shape check, no lookup)."""
    return (
        len(value) == len(prefix) + 27
        and value.startswith(prefix + "_")
        and value[len(prefix) + 1 :].isalnum()
    )


def id_floor(prefix: str, at: float) -> str:
    """The smallest id of kind ``prefix`` made at or after Unix time ``at``: ids compare like
    the times they were made, so ``id >= id_floor(...)`` is a time range on an id index."""
    return f"{prefix}_{str(ULID.from_timestamp(max(at, 0.0)))[:10]}{'0' * 16}"


def id_time(value: str) -> float:
    """Unix time (ms precision) at which the prefixed ULID ``value`` was made."""
    return float(ULID.from_str(value.split("_", 1)[1]).timestamp)
