"""What several endpoints share: the page query and page answer, and the Idempotency-Key."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

import msgspec

from gateway.api.routing import Call
from gateway.errors import ApiError

__all__ = ["PageQuery", "idempotency_key", "invalid_query", "page"]

T = TypeVar("T")


class PageQuery(msgspec.Struct, kw_only=True):
    """``?cursor=&limit=``: the cursor is ``next_cursor`` of the previous page."""

    cursor: Annotated[str, msgspec.Meta(max_length=80)] = ""
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 50


def page(
    rows: Sequence[Any], limit: int, build: Callable[[Any], T], key: Callable[[T], str]
) -> tuple[list[T], str | None]:
    """``(items, next_cursor)`` from ``limit + 1`` rows: the extra row says a next page exists."""
    items = [build(r) for r in rows[:limit]]
    return items, (key(items[-1]) if len(rows) > limit and items else None)


def invalid_query(field: str, reason: str) -> ApiError:
    """The validation_error for one bad query parameter."""
    return ApiError("validation_error", "invalid query", {"fields": {field: reason}})


def idempotency_key(call: Call[Any, Any]) -> str | None:
    """The ``Idempotency-Key`` header, if any (1-255 printable characters), counted against the
    account's daily budget of keyed requests (each may store one key for a day)."""
    key = call.request.headers.get("idempotency-key")
    if key is None:
        return None
    if not (1 <= len(key) <= 255 and key.isprintable()):
        raise ApiError(
            "validation_error",
            "invalid Idempotency-Key header",
            {"fields": {"Idempotency-Key": "1-255 printable characters"}},
        )
    budget = call.services.idempotency_budget
    wait = budget.take(call.account_id)
    if wait > 0:
        raise ApiError.rate_limited(
            wait,
            f"at most {budget.limit} requests with an Idempotency-Key a day",
            reason="idempotency_keys",
            limit=budget.limit,
        )
    return key
