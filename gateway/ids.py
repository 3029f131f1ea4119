"""Prefixed ULIDs: globally unique, time-ordered ids such as ``acc_01HV...`` and ``req_01HV...``.

Ids are global (never per-process counters) so several gateway processes can share one database.
"""

from __future__ import annotations

from ulid import ULID

__all__ = ["has_prefix", "new_id"]


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
