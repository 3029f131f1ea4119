"""The soak scenario must not rot: ``python -m bench run --scenario soak --quick`` for a few
seconds reports growth figures and accounts for every message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.child import run_bench


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_quick_soak_reports_growth_and_loses_nothing(tmp_path: Path) -> None:
    """A 6-second soak with churning relays samples RSS, files and tasks and loses nothing."""
    argv = ["run", "--scenario", "soak", "--quick", "--duration", "6", "--out", str(tmp_path)]
    proc = run_bench(argv, timeout=100)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path,) = tmp_path.glob("*-soak-quick.json")
    soak = json.loads(path.read_text())["scenarios"]["soak"]
    figures = soak["figures"]
    assert figures["accepted"] > 0 and figures["lost"] == 0 and figures["duplicated"] == 0, soak
    assert figures["churned_sockets"] > 0
    for key in ("rss_kib", "open_files", "tasks"):
        assert figures["growth"][key]["after_warmup"] is not None, (key, figures["growth"])
    assert all(sample["tasks"] for sample in figures["samples"])
