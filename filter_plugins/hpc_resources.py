"""Ansible filters over the cluster's resource rules: a thin adapter over ``jupyterhub_hpc.resources``.

The rules live once, in the project's Python package (``src/jupyterhub_hpc/resources.py``), which the hub runs
too. This plugin only exposes them to playbooks under stable filter names and turns ``ResourceError`` into
``AnsibleFilterError`` with the same message. The package must be installed in the Python that runs Ansible
(``scripts/bootstrap.sh`` installs it into the controller's virtualenv).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from ansible.errors import AnsibleFilterError

_rules: ModuleType | None
try:
    from jupyterhub_hpc import resources as _rules
except ImportError as err:  # told by the filter when a play uses it, not as Ansible's "no filter named ..."
    _rules, _MISSING = None, str(err)

# Filter name -> function of jupyterhub_hpc.resources. The names are a stable interface (filter_plugins/README.md).
FILTERS = {
    "hpc_memory_mb": "parse_memory_mb",
    "hpc_walltime_minutes": "parse_walltime_minutes",
    "hpc_slurm_time": "format_slurm_time",
    "hpc_validate_cluster": "validate_cluster",
    "hpc_validate_request": "validate_request",
    "hpc_fitting_node_types": "fitting_node_types",
    "hpc_gpu_choices": "gpu_choices",
}


def _ansible(rule: str) -> Callable[..., Any]:
    """The rule ``rule``, raising ``AnsibleFilterError`` with the same message instead of ``ResourceError``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _rules is None:
            raise AnsibleFilterError(
                f"the project's Python package jupyterhub_hpc is not importable by the Python that runs Ansible "
                f"({_MISSING}): run scripts/bootstrap.sh, or pip install --no-deps the project into that Python"
            )
        try:
            return getattr(_rules, rule)(*args, **kwargs)
        except _rules.ResourceError as err:
            raise AnsibleFilterError(str(err)) from err

    wrapper.__name__ = rule
    wrapper.__doc__ = getattr(_rules, rule).__doc__ if _rules is not None else None
    return wrapper


class FilterModule:
    """Ansible filters; see filter_plugins/README.md for each one's arguments, result and errors."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {name: _ansible(rule) for name, rule in FILTERS.items()}
