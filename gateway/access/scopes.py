"""The scopes an access token can carry, and parsing of scope lists."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["ALL_SCOPES", "Scope", "parse_scopes"]

Scope = Literal[
    "account.read",
    "account.manage",
    "messages.send",
    "messages.read",
    "otp.send",
    "otp.verify",
    "recipients.read",
    "recipients.write",
    "devices.manage",
    "queue.manage",
    "webhooks.manage",
    "tokens.manage",
]
"""A scope name; an unknown one is refused by the decoder with a plain message."""
ALL_SCOPES: tuple[str, ...] = get_args(Scope)


def parse_scopes(values: list[str] | str) -> list[str]:
    """Validate and normalise (dedupe, canonical order); ValueError names the unknown ones."""
    items = [v.strip() for v in values.split(",")] if isinstance(values, str) else list(values)
    items = [v for v in items if v]
    unknown = sorted(set(items) - set(ALL_SCOPES))
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(unknown)}")
    if not items:
        raise ValueError("at least one scope is required")
    return [s for s in ALL_SCOPES if s in set(items)]
