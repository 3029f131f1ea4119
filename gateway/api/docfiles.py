"""The committed documentation files made from the code: ``docs/openapi.json`` in its stable
form, and the generated events table of ``docs/api.md`` (between its ``events:begin`` and
``events:end`` markers). Written by ``python -m gateway.api.openapi``; tests compare both."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.events import catalogue_markdown

__all__ = ["EVENTS_BEGIN", "EVENTS_END", "render", "with_event_catalogue"]


def render(document: dict[str, Any]) -> bytes:
    """The committed form: indented, keys in a stable order, a final newline."""
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"


EVENTS_BEGIN = "<!-- events:begin"
EVENTS_END = "<!-- events:end -->"


def with_event_catalogue(markdown: str) -> str:
    """``markdown`` (docs/api.md) with its generated events table replaced by the current one."""
    start = markdown.index(EVENTS_BEGIN)
    body = markdown.index("\n", start) + 1
    end = markdown.index(EVENTS_END, body)
    return markdown[:body] + catalogue_markdown() + markdown[end:]
