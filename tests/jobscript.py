"""The role's job-script template rendered as Ansible then batchspawner render it (two Jinja passes), for the tests
that read it (tests/test_properties.py) and run it (tests/test_job_script_unit.py)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import jinja2

TEMPLATE = Path(__file__).resolve().parents[1] / "roles" / "batchspawner" / "templates" / "batch_script.sh.j2"


def render_job_script(job_vars: dict[str, Any], *, srun: str, cmd: str, **role: Any) -> str:
    """The script batchspawner submits: the role's settings (``role``, over the defaults below), then the job's
    variables (``job_vars``: the validated request's, ``Request.job_vars``) with ``srun`` and ``cmd``."""
    ansible_env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    ansible_env.filters["quote"] = shlex.quote  # Ansible's filter of that name
    settings: dict[str, Any] = {
        "batchspawner_job_name": "jupyterhub",
        "batchspawner_job_output": ".jupyterhub-slurm-%j.log",
        "batchspawner_runtime_parent": "${SLURM_TMPDIR:-${TMPDIR:-/tmp}}",
        "batchspawner_job_umask": "0022",
        "jupyterhub_user_env": "/opt/jupyterhub/user",
        "batchspawner_job_prologue": "",
        "batchspawner_job_env_init": ["/etc/profile.d/lmod.sh"],
        **role,
    }
    script = ansible_env.from_string(TEMPLATE.read_text()).render(**settings)
    return (
        jinja2.Environment()
        .from_string(script)
        .render(homedir="/home/alice", keepvars="PATH,JUPYTERHUB_API_TOKEN", srun=srun, cmd=cmd, **job_vars)
    )
