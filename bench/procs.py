"""The benchmark's child processes: start, talk to, measure, and always kill.

:class:`Child` is a process driven by JSON lines on stdin/stdout (the relay fleets);
:class:`GatewayProc` is ``python -m gateway serve`` with its own data folder and ports.
Every child is registered in :data:`ALL_CHILDREN` so the runner kills whatever is left at the
end, even after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any

import aiohttp

from bench.sysstat import cpu_seconds_of, free_port, pids_with_cmdline, proc_sample, tree_pids

__all__ = ["ALL_CHILDREN", "Child", "GatewayProc", "kill_all", "run_module", "wait_port"]

PYTHON = sys.executable
ALL_CHILDREN: list[asyncio.subprocess.Process] = []
ANSWER_LIMIT = 64 * 1024 * 1024
"""Longest answer line a child may send (reconnect times of 50k relays fit)."""


async def kill_all() -> None:
    """SIGKILL every child still running (the last line of defence)."""
    for proc in ALL_CHILDREN:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
    ALL_CHILDREN.clear()


async def wait_port(port: int, timeout: float) -> None:
    """Until something accepts TCP connections on 127.0.0.1:``port`` (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on port {port} after {timeout}s") from None
            await asyncio.sleep(0.05)


async def run_module(
    module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120.0
) -> tuple[int, str]:
    """Run ``python -m module args`` to completion; ``(exit code, stdout+stderr)``."""
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        module,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    ALL_CHILDREN.append(proc)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace")


class Child:
    """A ``python -m module`` child answering one JSON line per JSON command line."""

    def __init__(self, module: str, *args: str, log: Path | None = None) -> None:
        self.module = module
        self.args = args
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self._log_file: IO[bytes] | None = None

    async def start(self, timeout: float = 30.0) -> dict[str, Any]:
        """Start it and return its first line (``{"ok": true, "ready": ...}``)."""
        await self.start_process_only()
        return await self._read(timeout)

    async def start_process_only(self) -> None:
        """Start it without waiting for any line (servers that just listen)."""
        self._log_file = self.log.open("ab") if self.log else None
        self.proc = await asyncio.create_subprocess_exec(
            PYTHON,
            "-m",
            self.module,
            *self.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log_file if self._log_file else asyncio.subprocess.DEVNULL,
            limit=ANSWER_LIMIT,
        )
        ALL_CHILDREN.append(self.proc)

    async def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"{self.module} exited (see {self.log})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def command(self, cmd: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
        """Send one command and wait for its answer."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self._read(timeout)

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask it to stop; kill it if it does not exit in time."""
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(Exception):
            await self.command({"cmd": "stop"}, timeout)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self._log_file is not None:
            self._log_file.close()

    async def terminate(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self._log_file is not None:
            self._log_file.close()

    def kill(self) -> None:
        """SIGKILL now."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()


class GatewayProc:
    """``python -m gateway serve`` on free ports with a private data folder."""

    def __init__(self, data_dir: Path, database_url: str | None, extra_env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.http_port = free_port()
        self.relay_port = free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith("RELAYGATE_") and k != "DATABASE_URL"}
        self.env = {
            **base,
            "RELAYGATE_DATA_DIR": str(data_dir),
            "RELAYGATE_HOST": "127.0.0.1",
            "RELAYGATE_HTTP_PORT": str(self.http_port),
            "RELAYGATE_RELAY_PORT": str(self.relay_port),
            "RELAYGATE_LOG_FORMAT": "json",
            "RELAYGATE_LOG_LEVEL": "warning",
            "RELAYGATE_PAIR_RATE": "100000",
            "RELAYGATE_PAIR_BURST": "1000000",
            "RELAYGATE_API_RATE": "1000000",
            "RELAYGATE_API_BURST": "1000000",
            "RELAYGATE_MAX_QUEUE": "10000000",
            "RELAYGATE_WEBHOOK_ALLOW_PRIVATE": "1",
            "RELAYGATE_SHUTDOWN_TIMEOUT": "5",
            **extra_env,
        }
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.proc: asyncio.subprocess.Process | None = None
        self.log = data_dir / "gateway.log"

    @property
    def api(self) -> str:
        """API base URL."""
        return f"http://127.0.0.1:{self.http_port}/api"

    @property
    def ws_url(self) -> str:
        """Relay WebSocket URL."""
        return f"ws://127.0.0.1:{self.relay_port}/relay/v1"

    @property
    def pid(self) -> int:
        """The gateway process id."""
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout: float = 90.0) -> float:
        """Start and wait until ``/v1/health`` answers 200; the seconds it took."""
        started = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                PYTHON, "-m", "gateway", "serve", env=self.env, stdout=log, stderr=asyncio.subprocess.STDOUT
            )
        ALL_CHILDREN.append(self.proc)
        deadline = started + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"gateway exited {self.proc.returncode}; see {self.log}")
                try:
                    async with http.get(f"{self.api}/v1/health") as resp:
                        if resp.status == 200:
                            return time.monotonic() - started
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError(f"gateway not healthy after {timeout}s; see {self.log}")

    async def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, wait, SIGKILL if it does not exit."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def rss_kib(self) -> int:
        """Gateway resident memory."""
        return proc_sample(self.pid).rss_kib

    def cpu_seconds(self) -> float:
        """Gateway CPU used so far."""
        return proc_sample(self.pid).cpu_seconds

    def postgres_cpu_seconds(self) -> float:
        """CPU of the embedded PostgreSQL (postmaster and backends); 0 with an external one."""
        pids: list[int] = []
        for pid in pids_with_cmdline(str(self.data_dir / "pg")):
            pids.extend(tree_pids(pid))
        return cpu_seconds_of(sorted(set(pids)))

    def cli_env(self) -> dict[str, str]:
        """The environment for ``python -m gateway`` CLI commands against this gateway's database."""
        return dict(self.env)
