"""The overview's "messages per minute" chart: pure functions from messages to inline SVG."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup, escape

__all__ = ["SERIES", "Minutes", "per_minute", "svg_chart"]

SERIES: tuple[tuple[str, str], ...] = (("sent", "#1f5fa8"), ("delivered", "#1b7a3a"), ("failed", "#b3261e"))
"""Series name (a message timestamp ``<name>_at``) and its colour (contrast ≥ 4.5 on white)."""


@dataclass(frozen=True, slots=True)
class Minutes:
    """Counts per minute of each series, oldest minute first."""

    start: datetime
    counts: dict[str, list[int]]

    @property
    def peak(self) -> int:
        """The largest count of any series (at least 1)."""
        return max([1, *(max(v) for v in self.counts.values() if v)])

    def total(self, series: str) -> int:
        """All of ``series`` in the window."""
        return sum(self.counts[series])


def per_minute(messages: Iterable[object], now: datetime, minutes: int = 60) -> Minutes:
    """Bucket each message's ``sent_at``/``delivered_at``/``failed_at`` into the last ``minutes``."""
    start = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    counts = {name: [0] * minutes for name, _ in SERIES}
    for message in messages:
        for name, _ in SERIES:
            at = getattr(message, f"{name}_at", None)
            if at is None:
                continue
            index = int((at - start).total_seconds() // 60)
            if 0 <= index < minutes:
                counts[name][index] += 1
    return Minutes(start=start, counts=counts)


def svg_chart(data: Minutes, title: str, labels: dict[str, str]) -> Markup:
    """Three polylines on a 600x160 grid, scaled to the peak; ``labels`` names the series."""
    width, height, pad = 600, 160, 24
    n = len(next(iter(data.counts.values())))
    step = (width - 2 * pad) / max(1, n - 1)
    peak = data.peak

    def y(value: int) -> float:
        return height - pad - value * (height - 2 * pad) / peak

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#555"/>',
        f'<text x="2" y="{pad - 6}" font-size="12" fill="#222">{peak}</text>',
        f'<text x="2" y="{height - pad + 16}" font-size="12" fill="#222">-60 min</text>',
    ]
    for name, colour in SERIES:
        points = " ".join(f"{pad + i * step:.1f},{y(v):.1f}" for i, v in enumerate(data.counts[name]))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}">'
            f"<title>{escape(labels.get(name, name))}: {data.total(name)}</title></polyline>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
