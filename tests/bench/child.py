"""``python -m bench …`` as the bench tests run it: in its own session and temp folder, so a run
that overstays its time leaves nothing behind (its gateway, fleets and embedded PostgreSQL)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.harness import server_tmpdir

__all__ = ["run_bench"]

ROOT = Path(__file__).resolve().parents[2]


def _stop_postgres(folder: Path) -> None:
    """SIGKILL every PostgreSQL whose data directory is under ``folder`` (they run in a session
    of their own, which killing the bench's does not reach)."""
    for pidfile in folder.rglob("postmaster.pid"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pidfile.read_text().splitlines()[0])
            if str(pidfile.parent) in Path(f"/proc/{pid}/cmdline").read_text():  # not a reused pid
                os.kill(pid, signal.SIGKILL)


def run_bench(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run the bench with ``args``; fail the test with its output if it takes over ``timeout``."""
    with server_tmpdir("rg-bench-") as tmp:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench", *args],
            cwd=ROOT,
            env={**os.environ, "TMPDIR": str(tmp)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise AssertionError(
                f"bench {' '.join(args)} took over {timeout} s:\n{out[-3000:]}{err[-3000:]}"
            ) from None
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # whatever it left running
            _stop_postgres(tmp)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
