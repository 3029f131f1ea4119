# ruff: noqa: RUF001 (Cyrillic names and queries on purpose)
"""``python -m bench.recipients_search [--rows N] [--queries N] [--out DIR]``: the recipients
directory at scale through the real API.

Starts a gateway (embedded PostgreSQL in a temp folder, or ``DATABASE_URL``), makes an account,
imports ``--rows`` generated recipients (Latin names with and without accents, Cyrillic names,
+998 numbers, tags, a metadata column) with ``POST /v1/recipients/import`` and times it, imports
the same file again (every row unchanged), then sends ``--queries`` searches one after another
over a keep-alive connection, cycling through varied queries: name substrings of 1-6
characters (common and rare, accented, Cyrillic), number fragments in several formats, tag and
opt-out filters, and queries that match nothing. Prints p50/p99/max per kind and overall and
writes ``bench/results/<date>-recipients.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

from bench.api import create_account
from bench.procs import GatewayProc, kill_all
from bench.stats import percentiles

__all__ = ["main"]

FIRST = ["Alisher", "Álvaro", "Dilnoza", "Руслан", "Нодира", "José", "Zoë", "Bekzod", "Gulnora", "Иван",
         "Шахноза", "Sardor", "Malika", "Ömer", "François", "Aziz", "Лола", "Timur", "Kamola", "Søren"]  # fmt: skip
LAST = ["Karimov", "Rodríguez", "Yusupova", "Петров", "Tashkentova", "Núñez", "Rashidov", "Смирнова",
        "Ergashev", "Müller", "Abdullayev", "Иванова", "Xolmatov", "García", "Nazarova", "Кузнецов"]  # fmt: skip
TAGS = ["vip", "new", "wholesale", "tashkent", "samarkand", "newsletter"]
QUERIES: dict[str, list[dict[str, str]]] = {
    "name 1-2 chars": [{"q": "a"}, {"q": "ов"}, {"q": "zo"}, {"q": "ø"}, {"q": "q"}],
    "name 3 chars": [{"q": "ali"}, {"q": "рус"}, {"q": "alv"}, {"q": "kar"}, {"q": "ова"}],
    "name 4+ chars": [
        {"q": "dilnoza"},
        {"q": "Álvaro Núñez"},
        {"q": "rodriguez"},
        {"q": "ПЕТРОВ"},
        {"q": "omer m"},
        {"q": "francois"},
    ],
    "number": [{"q": "90 123"}, {"q": "+99890"}, {"q": "4567"}, {"q": "(90) 55"}, {"q": "12"}, {"q": "998"}],
    "filters": [{"tag": "vip"}, {"opted_out": "true"}, {"q": "ali", "tag": "new"}, {"tag": "none"}],
    "no match": [{"q": "xyzzy"}, {"q": "000000000"}, {"q": "жжж"}],
}


def generate_csv(rows: int, seed: int = 13) -> bytes:
    """A CSV file of ``rows`` recipients with distinct +998 numbers."""
    rng = random.Random(seed)
    numbers = rng.sample(range(10**7), rows)
    lines = ["name,phone,tags,locale,city"]
    for i, n in enumerate(numbers):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        tags = ";".join(rng.sample(TAGS, rng.randrange(3)))
        lines.append(f"{name},+99890{n:07d},{tags},{rng.choice(['uz', 'ru', 'en'])},city{i % 50}")
    return ("\n".join(lines) + "\n").encode()


async def _search(http: aiohttp.ClientSession, api: str, params: dict[str, str]) -> float:
    started = time.perf_counter()
    async with http.get(f"{api}/v1/recipients", params={"limit": "50", **params}) as resp:
        await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"search {params}: HTTP {resp.status}")
    return (time.perf_counter() - started) * 1000


async def run(rows: int, queries: int) -> dict[str, Any]:
    """The whole benchmark; the result document."""
    with tempfile.TemporaryDirectory(prefix="rg-bench-rcp-") as tmp:
        gateway = GatewayProc(Path(tmp), os.environ.get("DATABASE_URL") or None, {})
        try:
            await gateway.start()
            token = await create_account(gateway)
            data = generate_csv(rows)
            headers = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=120), headers=headers
            ) as http:
                imports = []
                for _ in range(2):
                    started = time.perf_counter()
                    async with http.post(
                        f"{gateway.api}/v1/recipients/import", data=data, headers={"Content-Type": "text/csv"}
                    ) as resp:
                        report = await resp.json()
                        if resp.status != 200:
                            raise RuntimeError(f"import: HTTP {resp.status} {report}")
                    imports.append({"seconds": round(time.perf_counter() - started, 3), **report})
                for params in [p for ps in QUERIES.values() for p in ps]:  # warm the statement cache
                    await _search(http, gateway.api, params)
                by_kind: dict[str, list[float]] = {kind: [] for kind in QUERIES}
                cycle = [(kind, p) for kind, ps in QUERIES.items() for p in ps]
                for i in range(queries):
                    kind, params = cycle[i % len(cycle)]
                    by_kind[kind].append(await _search(http, gateway.api, params))
        finally:
            await gateway.stop()
            await kill_all()
    everything = [v for values in by_kind.values() for v in values]
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(),
        "rows": rows,
        "csv_bytes": len(data),
        "imports": [
            {
                k: v
                for k, v in i.items()
                if k in {"seconds", "imported", "updated", "unchanged", "errors_total"}
            }
            for i in imports
        ],
        "search_ms": {"all": percentiles(everything), **{k: percentiles(v) for k, v in by_kind.items()}},
    }
    return result


def report(result: dict[str, Any], out_dir: Path) -> None:
    """Print the figures and write the result file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{datetime.now(UTC):%Y-%m-%d}-recipients.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    rows, imports = result["rows"], result["imports"]
    print(f"import {rows:,} rows: {imports[0]['seconds']} s (again, unchanged: {imports[1]['seconds']} s)")
    print("| queries | p50 ms | p99 ms | max ms | n |\n|---|---|---|---|---|")
    for kind, stats in result["search_ms"].items():
        print(f"| {kind} | {stats['p50']} | {stats['p99']} | {stats['max']} | {stats['n']} |")
    print(f"written to {path}")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(prog="python -m bench.recipients_search")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    report(uvloop.run(run(args.rows, args.queries)), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
