"""Networks the inventory names (``jupyterhub_api_allowed_networks``): the compute nodes' networks, from which the
``jupyterhub`` role's firewalld rules accept the hub's API port and nothing else does.

Each is a network in CIDR form, ``address/prefix`` (``10.20.0.0/16``, ``2001:db8:1::/48``; ``10.20.0.5/32`` for one
node): the network's own address (no host bits: ``10.20.0.5/16`` is refused, naming ``10.20.0.0/16``, since a site
that wrote it meant one of the two and firewalld would open the whole network), never a prefix of 0 (every address:
the port would be open to all, which the rule exists to prevent). The preflight refuses a broken list naming the
item's path (``jupyterhub_api_allowed_networks[1]: ...``); the role writes the normalized networks
(``check_networks``' result, Python's ``ipaddress`` form) into its rich rules.

No I/O; the standard library, and ``units.ResourceError`` for the error every rule raises: the controller's preflight
imports it (``filter_plugins/hpc_resources.py``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from jupyterhub_hpc.units import ResourceError, show

__all__ = ["check_networks"]

EXAMPLE = "address/prefix, e.g. 10.20.0.0/16 or 2001:db8:1::/48"


def _network(value: Any, where: str) -> str:
    if not isinstance(value, str) or "/" not in value:
        raise ResourceError(f"{where}: {show(value)} is not a network in CIDR form ({EXAMPLE})")
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ResourceError(f"{where}: {show(value)} is not a network in CIDR form ({EXAMPLE})") from None
    if network.prefixlen == 0:
        raise ResourceError(
            f"{where}: {show(value)} is every address: the hub's API would be open to all; name the compute nodes' "
            "networks"
        )
    if network.network_address != ipaddress.ip_interface(value.strip()).ip:
        raise ResourceError(f"{where}: {show(value)} has host bits set (the network is {network})")
    return str(network)


def check_networks(value: Any, path: str = "jupyterhub_api_allowed_networks") -> list[str]:
    """The networks of ``value`` (a list of CIDR strings), normalized and in their order, duplicates dropped; a
    ``ResourceError`` naming each broken item by its path otherwise."""
    if not isinstance(value, list):
        raise ResourceError(f"{path}: {show(value)} is not a list of networks ({EXAMPLE})")
    problems: list[str] = []
    networks: list[str] = []
    for index, item in enumerate(value):
        try:
            network = _network(item, f"{path}[{index}]")
        except ResourceError as err:
            problems.extend(err.problems)
            continue
        if network not in networks:
            networks.append(network)
    if problems:
        raise ResourceError(problems)
    return networks
