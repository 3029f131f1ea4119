"""relaygate's process: configuration, CLI, HTTP API, relay listener, webhooks and their wiring."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("relaygate")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"
