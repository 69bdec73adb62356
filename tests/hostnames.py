"""Name resolution for the test harness, as an /etc/hosts line would give it without touching the machine: with
users' servers on host names of their own (JupyterHub's subdomain_host), the hub is at NAME and alice's server at
alice.NAME; the tests' HTTP and websocket clients (requests, websocket-client) resolve both to the hub's address.
Chromium gets the same map through --host-resolver-rules (``chromium_rules``)."""

from __future__ import annotations

import socket
from typing import Any

_MAP: dict[str, str] = {}
_ORIGINAL = socket.getaddrinfo


def _lookup(host: str) -> str | None:
    name = host.lower().rstrip(".")
    for domain, address in _MAP.items():
        if name == domain or name.endswith("." + domain):
            return address
    return None


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    address = _lookup(host) if isinstance(host, str) else None
    return _ORIGINAL(address or host, *args, **kwargs)


def map_domain(domain: str, address: str) -> None:
    """Resolve ``domain`` and every name under it to ``address`` in this process."""
    _MAP[domain.lower()] = address
    socket.getaddrinfo = _getaddrinfo


def chromium_rules(domain: str, address: str) -> str:
    """The same map for Chromium's --host-resolver-rules."""
    return f"--host-resolver-rules=MAP {domain} {address}, MAP *.{domain} {address}"
