"""Rows to Structs: the one place an ``asyncpg.Record`` becomes a typed value.

Store functions return row Structs (``msgspec.Struct`` classes declared next to their SQL), never
records, so nothing outside ``store/`` reads a row by column name. ``msgspec.convert`` checks each
column against the Struct's field types: datetimes, ``None``, arrays (lists) and jsonb values (already
Python values, see :func:`store.database.set_codecs`) pass as asyncpg returns them; a column the
Struct does not name is ignored, a missing one without a default is an error (a query and its
Struct out of step).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import msgspec

__all__ = ["many", "one"]

T = TypeVar("T")


def one(record: Mapping[str, Any] | None, row_type: type[T]) -> T | None:
    """``record`` as a ``row_type``, or ``None`` when there is no row."""
    if record is None:
        return None
    return msgspec.convert(dict(record), row_type)


def many(records: Iterable[Mapping[str, Any]], row_type: type[T]) -> list[T]:
    """Each of ``records`` as a ``row_type``, in order."""
    return [msgspec.convert(dict(record), row_type) for record in records]
