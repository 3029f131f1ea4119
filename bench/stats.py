"""Percentiles and the printed table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["percentiles", "render_table"]


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50, p90, p99 and max (nearest-rank), rounded to 0.01; None for no values."""
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None, "n": 0}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 2)

    return {
        "p50": rank(50),
        "p90": rank(90),
        "p99": rank(99),
        "max": round(ordered[-1], 2),
        "n": len(ordered),
    }


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def render_table(rows: list[tuple[str, str, Any, str]]) -> str:
    """Rows of (scenario, figure, value, note) as a Markdown table."""
    lines = ["| scenario | figure | value | note |", "|---|---|---|---|"]
    lines += [f"| {s} | {f} | {_cell(v)} | {n} |" for s, f, v, n in rows]
    return "\n".join(lines)
