"""Profile the send path: py-spy samples the gateway while S2's load runs at a fixed rate.

The raw (collapsed stacks) output is summarised into the functions with the most samples on
top of the stack (self) and anywhere in it (inclusive). py-spy is an optional tool
(``pip install py-spy``); without it the profile is skipped.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.context import Bench
from bench.procs import ALL_CHILDREN
from bench.scenarios import Outcome
from bench.scenarios.s2_send import setup, step

__all__ = ["run", "summarise"]

_LINE = re.compile(r"^(.*) (\d+)$")
_VENV_NOISE = re.compile(r"\s*\((?:.*/site-packages/|.*/lib/python3\.\d+/)?([^()]*)\)$")


def _short(frame: str) -> str:
    """``func (path/to/module.py:123)`` → ``func (module.py:123)``-ish, with the package kept."""
    m = re.match(r"^(.*) \((.*)\)$", frame)
    if not m:
        return frame
    func, where = m.groups()
    where = where.split("site-packages/")[-1].split("/work/main/")[-1]
    where = re.sub(r"^.*/lib/python3\.\d+/", "stdlib/", where)
    return f"{func} ({where})"


def summarise(raw: str, top: int = 25) -> dict[str, Any]:
    """Top frames by self and inclusive samples from py-spy's ``--format raw`` output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        stack, count = m.group(1), int(m.group(2))
        frames = [_short(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count

    def table(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"frame": f, "samples": c, "percent": round(100 * c / total, 1)}
            for f, c in counter.most_common(top)
        ]

    return {"samples": total, "self": table(own), "inclusive": table(inclusive)}


def find_py_spy() -> str | None:
    """The py-spy executable (next to this Python, or on PATH)."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def _read_text(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


async def run(bench: Bench, rate: float, seconds: float, out_file: Path) -> Outcome:
    """py-spy on the gateway during an S2 step at ``rate``."""
    spy = find_py_spy()
    if spy is None:
        return Outcome("skipped", reason="py-spy not installed (pip install py-spy)")
    webhook = await setup(bench)
    assert bench.gateway is not None
    proc = await asyncio.create_subprocess_exec(
        spy, "record", "--pid", str(bench.gateway.pid), "--rate", "250", "--duration", str(int(seconds)),
        "--format", "raw", "--nonblocking", "-o", str(out_file),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    ALL_CHILDREN.append(proc)
    await asyncio.sleep(0.5)
    figures = await step(bench, rate, seconds - 1.0, 9_000_000, webhook is not None)
    try:
        await asyncio.wait_for(proc.wait(), seconds + 30)
    except TimeoutError:
        proc.kill()
    await bench.stop_fleets()
    raw = _read_text(out_file)
    if raw is None:
        return Outcome("failed", reason="py-spy wrote nothing (ptrace not permitted?)")
    summary = summarise(raw)
    out = Outcome(
        "ok", figures={"rate": rate, "step": figures, "profile": summary, "raw_file": out_file.name}
    )
    for row in summary["self"][:8]:
        out.rows.append((f"self {row['percent']}%", row["frame"], ""))
    return out
