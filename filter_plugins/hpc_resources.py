"""Ansible filters over the cluster's resource rules: a thin adapter over ``jupyterhub_hpc.resources``.

The rules live once, in the project's Python package (``src/jupyterhub_hpc/resources.py``), which the hub runs
too. This plugin only exposes them to playbooks under stable filter names, answers JSON data (the package's frozen
``Cluster`` and ``Request`` as their ``to_data()``), and turns ``ResourceError`` into ``AnsibleFilterError`` with the
same message. A ``cluster`` argument is always the inventory's raw ``hpc_cluster``. The package must be installed in
the Python that runs Ansible (``scripts/bootstrap.sh`` installs it into the controller's virtualenv).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ansible.errors import AnsibleFilterError

_rules: ModuleType | None
_apps: ModuleType | None
_names: ModuleType | None
try:
    from jupyterhub_hpc import apps as _apps
    from jupyterhub_hpc import names as _names
    from jupyterhub_hpc import resources as _rules
except ImportError as err:  # told by the filter when a play uses it, not as Ansible's "no filter named ..."
    _rules, _apps, _names, _MISSING = None, None, None, str(err)


def _validate_cluster(cluster: Any, path: str = "hpc_cluster") -> dict[str, Any]:
    """The validated model as the hub receives it (``Cluster.to_data``: JSON data with its schema version)."""
    assert _rules is not None
    return dict(_rules.validate_cluster(cluster, path).to_data())


def _validate_request(options: Any, cluster: Any, accounts: list[str] | None = None) -> dict[str, Any]:
    assert _rules is not None
    return dict(_rules.validate_request(options, _rules.validate_cluster(cluster), accounts).to_data())


def _fitting_node_types(cluster: Any, cores: int, memory_mb: int, gpu_type: str | None, gpu_count: int) -> list[str]:
    assert _rules is not None
    return list(_rules.fitting_node_types(_rules.validate_cluster(cluster), cores, memory_mb, gpu_type, gpu_count))


def _gpu_choices(cluster: Any) -> list[dict[str, Any]]:
    assert _rules is not None
    return [dataclasses.asdict(choice) for choice in _rules.gpu_choices(_rules.validate_cluster(cluster))]


def _server_proxy_apps(apps: Any, path: str = "jupyter_env_apps") -> dict[str, Any]:
    """jupyter-server-proxy's ServerProxy.servers for the site's apps (jupyterhub_hpc.apps), checked."""
    assert _apps is not None
    return dict(_apps.server_proxy_servers(apps, path))


def _username_pattern(pattern: Any, path: str = "jupyterhub_username_pattern") -> str:
    """The site's user-name pattern, checked (jupyterhub_hpc.names.check_username_pattern)."""
    assert _names is not None
    return str(_names.check_username_pattern(pattern, path))


def _refused_usernames(names: Any, pattern: Any = None) -> list[str]:
    """The names of a list that the user-name rule refuses by ``pattern``, or by the rule's floor alone when there is
    none (jupyterhub_hpc.names.refused_usernames)."""
    assert _names is not None
    return list(_names.refused_usernames(names, None if pattern is None else _username_pattern(pattern)))


# Filter name -> the rule: a function of jupyterhub_hpc.resources by name, or its adapter above. The names are a
# stable interface (filter_plugins/README.md).
FILTERS: dict[str, str | Callable[..., Any]] = {
    "hpc_memory_mb": "parse_memory_mb",
    "hpc_walltime_minutes": "parse_walltime_minutes",
    "hpc_slurm_time": "format_slurm_time",
    "hpc_validate_cluster": _validate_cluster,
    "hpc_validate_request": _validate_request,
    "hpc_fitting_node_types": _fitting_node_types,
    "hpc_gpu_choices": _gpu_choices,
    "hpc_server_proxy_apps": _server_proxy_apps,
    "hpc_username_pattern": _username_pattern,
    "hpc_refused_usernames": _refused_usernames,
}


def _ansible(rule: str | Callable[..., Any]) -> Callable[..., Any]:
    """The rule, raising ``AnsibleFilterError`` with the same message instead of ``ResourceError`` (or the user-name
    rule's ``UsernamePatternError``)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _rules is None or _names is None:
            raise AnsibleFilterError(
                f"the project's Python package jupyterhub_hpc is not importable by the Python that runs Ansible "
                f"({_MISSING}): run scripts/bootstrap.sh, or pip install --no-deps the project into that Python"
            )
        try:
            return (getattr(_rules, rule) if isinstance(rule, str) else rule)(*args, **kwargs)
        except (_rules.ResourceError, _names.UsernamePatternError) as err:
            raise AnsibleFilterError(str(err)) from err

    function = rule if not isinstance(rule, str) else getattr(_rules, rule) if _rules is not None else None
    wrapper.__name__ = rule if isinstance(rule, str) else rule.__name__.lstrip("_")
    wrapper.__doc__ = function.__doc__ if function is not None else None
    return wrapper


class FilterModule:
    """Ansible filters; see filter_plugins/README.md for each one's arguments, result and errors."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {name: _ansible(rule) for name, rule in FILTERS.items()}
