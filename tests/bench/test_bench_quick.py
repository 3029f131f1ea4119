"""The benchmark harness must not rot: ``python -m bench run --quick`` runs every scenario."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.child import run_bench

SCENARIOS = ("S0", "S1", "S2", "S3", "S4", "S5", "S6")


def _has_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, dict):
        return any(_has_number(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_number(v) for v in value)
    return False


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_quick_run_reports_every_scenario(tmp_path: Path) -> None:
    """A quick run finishes in time and reports figures (or an explicit skip) for every scenario."""
    proc = run_bench(["run", "--quick", "--out", str(tmp_path)], timeout=85)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = list(tmp_path.glob("*-all-quick.json"))
    assert len(files) == 1, proc.stdout[-2000:]
    result = json.loads(files[0].read_text())
    assert result["machine"]["cores"] >= 1
    assert result["versions"]["relaygate"]
    for key in SCENARIOS:
        scenario = result["scenarios"][key]
        if scenario["status"] == "skipped":
            assert scenario["reason"], key
        else:
            assert scenario["status"] in ("ok", "partial"), (key, scenario)
            assert _has_number(scenario["figures"]), (key, scenario)
    s6 = result["scenarios"]["S6"]["figures"]
    assert s6["queue_seconds"] > 0 and s6["batch"]["completed_at"] is not None
    high = s6["high_sends_while_draining"]
    assert high["accepted"] > 0 and high["reached_relay"] >= 0.9 * high["accepted"], high
    s2 = result["scenarios"]["S2"]["figures"]
    assert s2["steps"][0]["accepted"] > 0
    assert s2["steps"][0]["latency_ms"]["accept"]["p99"] is not None
    s3 = result["scenarios"]["S3"]["figures"]
    assert s3["steps"][0]["accepted"] > 0 and s3["backlog"] == sum(s["accepted"] for s in s3["steps"])
    assert s3["steps"][0]["gateway_cpu_ms_per_1000"] > 0
    s5 = result["scenarios"]["S5"]["figures"]
    assert s5["lost"] == 0 and s5["duplicated"] == 0
