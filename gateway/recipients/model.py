"""What a recipient is: its wire shape, the field rules shared by the API and the CSV import,
and the per-account ceilings."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any

import msgspec

from store.recipients import RecipientRow

__all__ = [
    "MAX_LISTS",
    "MAX_METADATA_BYTES",
    "MAX_RECIPIENTS",
    "RESERVED_METADATA_KEYS",
    "Metadata",
    "Name",
    "Recipient",
    "Tag",
    "Tags",
    "metadata_key_problem",
    "metadata_problem",
    "recipient_from_row",
    "tag_problem",
]

MAX_RECIPIENTS = 1_000_000
"""Recipients in one account's directory."""
MAX_LISTS = 1_000
"""Recipient lists per account."""
MAX_METADATA_BYTES = 1024
"""A recipient's metadata as JSON."""
RESERVED_METADATA_KEYS = frozenset({"name", "phone"})
"""Placeholders a list message takes from the recipient itself, not from metadata."""

LABEL_PATTERN = r"\A[^\x00-\x1f\x7f-\x9f\u2028\u2029]*\Z"
"""One line of text (gateway.api.fields.LABEL_PATTERN; not imported, which would import the API)."""
_TAG_CHAR = r"[^\x00-\x1f\x7f-\x9f\u2028\u2029;,]"
_TAG_EDGE = r"[^\s\x00-\x1f\x7f-\x9f\u2028\u2029;,]"
TAG_PATTERN = rf"\A{_TAG_EDGE}(?:{_TAG_CHAR}{{0,30}}{_TAG_EDGE})?\Z"
"""1-32 characters, one line, no ``;`` or ``,`` (the CSV separators), no space at either end."""
METADATA_KEY_PATTERN = r"\A[A-Za-z_][A-Za-z0-9_]{0,39}\Z"
"""What a ``{placeholder}`` can name."""

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=LABEL_PATTERN)]
Tag = Annotated[str, msgspec.Meta(pattern=TAG_PATTERN)]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=20)]
MetadataKey = Annotated[str, msgspec.Meta(pattern=METADATA_KEY_PATTERN)]
MetadataValue = (
    Annotated[str, msgspec.Meta(max_length=200)]
    | Annotated[int, msgspec.Meta(ge=-(2**53), le=2**53)]
    | Annotated[float, msgspec.Meta(ge=-1e15, le=1e15)]
    | bool
)
Metadata = Annotated[dict[MetadataKey, MetadataValue], msgspec.Meta(max_length=20)]
"""String keys (placeholder names) to scalar values: at most 20 keys and 1 KiB of JSON."""

_TAG_RE = re.compile(TAG_PATTERN)
_KEY_RE = re.compile(METADATA_KEY_PATTERN)


class Recipient(msgspec.Struct, kw_only=True):
    """A recipient as the API shows it."""

    id: str
    name: str
    phone: str
    """E.164."""
    tags: list[str]
    locale: str | None
    metadata: dict[str, Any]
    opted_out: bool
    created_at: datetime
    updated_at: datetime


def recipient_from_row(r: RecipientRow) -> Recipient:
    """A directory row as the API shows it."""
    return Recipient(
        id=r.id,
        name=r.name,
        phone=r.phone,
        tags=r.tags,
        locale=r.locale,
        metadata=r.metadata,
        opted_out=r.opted_out,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def tag_problem(tag: str) -> str | None:
    """Why ``tag`` is refused, or None."""
    return None if _TAG_RE.match(tag) else "tags are 1-32 characters, one line, without ; or ,"


def metadata_key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a metadata key, or None."""
    if not _KEY_RE.match(key):
        return "metadata keys are 1-40 letters, digits or _, not starting with a digit"
    if key in RESERVED_METADATA_KEYS:
        return f"{key!r} is reserved (the recipient's own field)"
    return None


def metadata_problem(metadata: dict[str, Any]) -> str | None:
    """Why ``metadata`` is refused beyond its declared type (reserved keys, total size), or None."""
    for key in metadata:
        problem = metadata_key_problem(key)
        if problem is not None:
            return problem
    if len(json.dumps(metadata, ensure_ascii=False).encode()) > MAX_METADATA_BYTES:
        return f"at most {MAX_METADATA_BYTES} bytes of JSON"
    return None
