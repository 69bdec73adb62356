"""Ansible filters over the cluster's resource rules: a thin adapter over the package ``jupyterhub_hpc``.

The rules live once, in the project's Python package, which the hub runs too: ``units`` (the grammar of values),
``cluster_rules`` (the inventory's cluster model), ``request_rules`` (a user's request), ``apps`` (the users'
applications), ``names`` (user names) and ``networks`` (the compute nodes' networks), under
``src/jupyterhub_hpc/``. This plugin only exposes them to playbooks under stable filter names, answers JSON data (the
package's frozen ``Cluster`` and ``Request`` as their ``to_data()``), and turns ``ResourceError`` into
``AnsibleFilterError`` with the same message. A ``cluster`` argument is always the
inventory's raw ``hpc_cluster``. The package must be installed in the Python that runs Ansible
(``scripts/bootstrap.sh`` installs it into the controller's virtualenv).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError

_MISSING: str | None = None
try:
    from jupyterhub_hpc import apps as _apps
    from jupyterhub_hpc import cluster_rules as _cluster
    from jupyterhub_hpc import names as _names
    from jupyterhub_hpc import networks as _networks
    from jupyterhub_hpc import request_rules as _request
    from jupyterhub_hpc import units as _units
except ImportError as err:  # told by the filter when a play uses it, not as Ansible's "no filter named ..."
    _MISSING = str(err)


def _validate_cluster(cluster: Any, path: str = "hpc_cluster") -> dict[str, Any]:
    """The validated model as the hub receives it (``Cluster.to_data``: JSON data with its schema version)."""
    return dict(_cluster.validate_cluster(cluster, path).to_data())


def _validate_request(options: Any, cluster: Any, accounts: list[str] | None = None) -> dict[str, Any]:
    return dict(_request.validate_request(options, _cluster.validate_cluster(cluster), accounts).to_data())


def _fitting_node_types(cluster: Any, cores: int, memory_mb: int, gpu_type: str | None, gpu_count: int) -> list[str]:
    model = _cluster.validate_cluster(cluster)
    return list(_cluster.fitting_node_types(model, cores, memory_mb, gpu_type, gpu_count))


def _gpu_choices(cluster: Any) -> list[dict[str, Any]]:
    model = _cluster.validate_cluster(cluster)
    return [dataclasses.asdict(choice) for choice in _cluster.gpu_choices(model)]


def _server_proxy_apps(apps: Any, path: str = "jupyter_env_apps") -> dict[str, Any]:
    """jupyter-server-proxy's ServerProxy.servers for the site's apps (jupyterhub_hpc.apps), checked."""
    return dict(_apps.server_proxy_servers(apps, path))


def _username_pattern(pattern: Any, path: str = "jupyterhub_username_pattern") -> str:
    """The site's user-name pattern, checked (jupyterhub_hpc.names.check_username_pattern)."""
    return str(_names.check_username_pattern(pattern, path))


def _networks_checked(networks: Any, path: str = "jupyterhub_api_allowed_networks") -> list[str]:
    """The networks of a list of CIDR strings, normalized (jupyterhub_hpc.networks.check_networks)."""
    return list(_networks.check_networks(networks, path))


def _refused_usernames(names: Any, pattern: Any = None) -> list[str]:
    """The names of a list that the user-name rule refuses by ``pattern``, or by the rule's floor alone when there is
    none (jupyterhub_hpc.names.refused_usernames)."""
    return list(_names.refused_usernames(names, None if pattern is None else _username_pattern(pattern)))


# Filter name -> the rule: "<module>.<function>" of the package by name, or its adapter above. The names are a
# stable interface (filter_plugins/README.md).
FILTERS: dict[str, str | Callable[..., Any]] = {
    "hpc_memory_mb": "units.parse_memory_mb",
    "hpc_walltime_minutes": "units.parse_walltime_minutes",
    "hpc_slurm_time": "model.format_slurm_time",
    "hpc_validate_cluster": _validate_cluster,
    "hpc_validate_request": _validate_request,
    "hpc_fitting_node_types": _fitting_node_types,
    "hpc_gpu_choices": _gpu_choices,
    "hpc_server_proxy_apps": _server_proxy_apps,
    "hpc_username_pattern": _username_pattern,
    "hpc_refused_usernames": _refused_usernames,
    "hpc_networks": _networks_checked,
}


def _function(rule: str | Callable[..., Any]) -> Callable[..., Any]:
    """The package's function a rule names (``"units.parse_memory_mb"``), or the adapter itself."""
    if not isinstance(rule, str):
        return rule
    module, name = rule.rsplit(".", 1)
    function: Callable[..., Any] = getattr(importlib.import_module(f"jupyterhub_hpc.{module}"), name)
    return function


def _ansible(rule: str | Callable[..., Any]) -> Callable[..., Any]:
    """The rule, raising ``AnsibleFilterError`` with the same message instead of ``ResourceError`` (or the user-name
    rule's ``UsernamePatternError``)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _MISSING is not None:
            raise AnsibleFilterError(
                f"the project's Python package jupyterhub_hpc is not importable by the Python that runs Ansible "
                f"({_MISSING}): run scripts/bootstrap.sh, or pip install --no-deps the project into that Python"
            )
        try:
            return _function(rule)(*args, **kwargs)
        except (_units.ResourceError, _names.UsernamePatternError) as err:
            raise AnsibleFilterError(str(err)) from err

    wrapper.__name__ = rule.rsplit(".", 1)[-1] if isinstance(rule, str) else rule.__name__.lstrip("_")
    wrapper.__doc__ = _function(rule).__doc__ if _MISSING is None else None
    return wrapper


class FilterModule:
    """Ansible filters; see filter_plugins/README.md for each one's arguments, result and errors."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {name: _ansible(rule) for name, rule in FILTERS.items()}
