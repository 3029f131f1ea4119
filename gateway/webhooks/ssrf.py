"""SSRF guard for webhook URLs.

URLs must be ``http`` or ``https`` with a host. Unless the operator allows private targets
(``RELAYGATE_WEBHOOK_ALLOW_PRIVATE=1``), every address a host resolves to must be public:
loopback, private, link-local (cloud metadata at 169.254.169.254), CGNAT (100.64.0.0/10),
multicast, unspecified and reserved ranges are refused, including IPv4-mapped IPv6 forms.
The host is resolved once per attempt by :class:`GuardedResolver`, every address is checked,
and the connection goes to the checked addresses (so DNS cannot swap them in between).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = ["BlockedAddress", "GuardedResolver", "check_address", "validate_url"]

MAX_URL_LENGTH = 2048


class BlockedAddress(OSError):
    """The target resolves to an address webhooks may not reach."""


def _refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return _refused(mapped)
    return not ip.is_global or ip.is_multicast or ip.is_unspecified or ip.is_reserved


def check_address(address: str, *, allow_private: bool) -> None:
    """Raise :class:`BlockedAddress` when ``address`` may not be reached."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if not allow_private and _refused(ip):
        raise BlockedAddress(f"{address} is not a public address")


def validate_url(url: str, *, allow_private: bool) -> str | None:
    """Why ``url`` is unacceptable as a webhook target, or None. Literal addresses are checked;
    names are checked when resolved (here with :func:`resolve_checked`, and at every attempt)."""
    if len(url) > MAX_URL_LENGTH:
        return f"at most {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username or parts.password:
        return "must not carry credentials"
    if port == 0:
        return "invalid port"
    try:
        check_address(parts.hostname, allow_private=allow_private)
    except ValueError:
        return None  # a name, not a literal address
    except BlockedAddress as exc:
        return str(exc)
    return None


async def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Resolve ``host`` once and check every address; the addresses, or :class:`BlockedAddress`."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc}") from exc
    addresses = sorted({str(info[4][0]) for info in infos})
    for address in addresses:
        check_address(address, allow_private=allow_private)
    return addresses


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that refuses hosts with any non-public address."""

    def __init__(self, *, allow_private: bool) -> None:
        self._allow_private = allow_private

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        """Checked addresses in aiohttp's format."""
        addresses = await resolve_checked(host, port, allow_private=self._allow_private)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        """Nothing to release."""
