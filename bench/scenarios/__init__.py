"""The scenarios, S0 to S6; each ``run(bench)`` returns a :class:`Outcome`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Outcome", "Row"]

Row = tuple[str, Any, str]
"""(figure, value, note) for the printed table."""


@dataclass
class Outcome:
    """A scenario's result: ``ok`` with figures, or ``skipped``/``failed`` with a reason."""

    status: str
    figures: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    reason: str | None = None
