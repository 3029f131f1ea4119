"""Records to row Structs: what store modules return instead of ``asyncpg.Record``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import msgspec

__all__ = ["many", "one"]

T = TypeVar("T")


def one(record: Any, row_type: type[T]) -> T | None:
    """``record`` as a ``row_type``, or None when there is no record."""
    return None if record is None else msgspec.convert(dict(record), row_type)


def many(records: Iterable[Any], row_type: type[T]) -> list[T]:
    """Every record as a ``row_type``."""
    return [msgspec.convert(dict(r), row_type) for r in records]
