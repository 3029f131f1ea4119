"""``python -m bench run [--quick] [--scenario NAME] [--duration S] [--max-relays N] [--profile] [--out DIR]``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import uvloop

from bench.context import Options
from bench.runner import DEFAULT_SCENARIOS, SCENARIOS, run_bench

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench", description="relaygate load benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run scenarios and write bench/results/<date>-<label>.json")
    run.add_argument("--quick", action="store_true", help="every scenario small, under a minute")
    run.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="run only this scenario (repeatable; default: all but soak)",
    )
    run.add_argument("--duration", type=float, help="seconds of the soak's send load (default 600, quick 20)")
    run.add_argument("--max-relays", type=int, default=20000, help="largest S1 fleet (50000 adds that step)")
    run.add_argument("--profile", action="store_true", help="py-spy the gateway during an S2-style step")
    run.add_argument(
        "--webhook-batch",
        type=int,
        help="S2/S4's webhook endpoint batches up to N events per request (default: one per request)",
    )
    run.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="result folder")
    args = parser.parse_args(argv)
    options = Options(
        quick=args.quick,
        scenarios=tuple(args.scenario or DEFAULT_SCENARIOS),
        out_dir=args.out,
        max_relays=args.max_relays,
        profile=args.profile,
        database_url=os.environ.get("DATABASE_URL") or None,
        duration=args.duration,
        webhook_batch=args.webhook_batch,
    )
    _, result = uvloop.run(run_bench(options))
    failed = [k for k, s in result["scenarios"].items() if s["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
