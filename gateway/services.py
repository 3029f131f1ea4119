"""What request handlers and background tasks can reach: built by the runtime, never global."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.auth import Authenticator
from gateway.config import Settings

__all__ = ["Services"]


@dataclass(slots=True)
class Services:
    """Shared resources of one running gateway."""

    settings: Settings
    pool: asyncpg.Pool[Any]
    authenticator: Authenticator
    started_at: float
    """``time.monotonic()`` at start, for uptime."""
    http_port: int = 0
    relay_port: int = 0
