"""Kernels declared in the inventory appear in the user's server and run inside their environments."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from hubclient import HubClient
from molhelpers import squeue_of
from testinfra.host import Host


def normalize(requirement: str) -> str:
    name, _sep, version = requirement.partition("==")
    return re.sub(r"[-_.]+", "-", name).lower() + "==" + version


def test_declared_kernels_are_listed(running: HubClient) -> None:
    specs = running.server_api("GET", "/kernelspecs").json()["kernelspecs"]
    assert set(specs) == {"python3", "demo-tools", "analysis", "ir"}
    assert specs["demo-tools"]["spec"]["display_name"] == "Python 3 (module demo-tools/1.0)"
    assert specs["demo-tools"]["spec"]["env"] == {"JUPYTERHUB_HPC_KERNEL": "demo-tools"}
    assert specs["analysis"]["spec"]["display_name"] == "Python 3 (analysis environment)"
    # The inventory's R kernel (envkernel, module r/4), in place of the image's own "ir" (Debian's IRkernel).
    assert specs["ir"]["spec"]["display_name"] == "R 4 (module r/4)"
    assert specs["ir"]["spec"]["language"] == "R"
    assert specs["ir"]["spec"]["argv"][:4] == ["/opt/jupyterhub/user/bin/envkernel", "lmod", "run", "r/4"]


def test_lmod_kernel_runs_with_its_module_loaded(running: HubClient) -> None:
    code = (
        "import os, subprocess, sys; "
        "print(os.environ.get('DEMO_TOOLS_VERSION'), os.environ.get('JUPYTERHUB_HPC_KERNEL'), "
        "subprocess.run(['demo-tools'], capture_output=True, text=True).stdout.strip().replace(' ', '_'), sys.prefix)"
    )
    assert running.execute(code, kernel_name="demo-tools").split() == [
        "1.0",
        "demo-tools",
        "demo-tools_1.0",
        "/opt/jupyterhub/user",
    ]


def test_r_kernel_computes_in_the_job_with_its_module_loaded(running: HubClient, hub: Host) -> None:
    """The demo site's R (Debian's r-base-core and r-cran-irkernel, as the module r/4) through IRkernel, in bob's
    Slurm job on the compute node."""
    code = (
        'cat(6*7, Sys.getenv("JUPYTERHUB_HPC_KERNEL"), Sys.getenv("LOADEDMODULES"), Sys.getenv("SLURM_JOB_ID"), '
        'Sys.info()[["nodename"]], R.version$major, sep = " ")'
    )
    (job,) = (line.split()[0] for line in squeue_of(hub, "bob"))
    out = running.execute(code, kernel_name="ir", timeout=120)
    assert out.split() == ["42", "ir", "r/4", job, "jhub-mol-node1", "4"]


def test_environment_kernel_runs_in_its_environment(running: HubClient) -> None:
    out = running.execute("import sys, os; print(sys.prefix, os.environ.get('DEMO_TOOLS_VERSION'))", "analysis")
    assert out.split() == ["/opt/jupyterhub/analysis", "None"]


def test_default_kernel_is_the_users_environment(running: HubClient) -> None:
    assert running.execute("import sys; print(sys.prefix)", "python3").strip() == "/opt/jupyterhub/user"


def test_environments_are_separate_and_read_only(hub: Host) -> None:
    for env in ("hub", "user", "analysis"):
        assert hub.file(f"/opt/jupyterhub/{env}/bin/python").exists
        assert hub.file(f"/opt/jupyterhub/{env}.lock.txt").user == "root"
    frozen = hub.check_output("/opt/jupyterhub/analysis/bin/pip freeze --all --exclude pip --exclude setuptools")
    locked = [
        line.split()[0]
        for line in hub.file("/opt/jupyterhub/analysis.lock.txt").content_string.splitlines()
        if "==" in line
    ]
    assert sorted(map(normalize, frozen.split())) == sorted(map(normalize, locked))
    assert "jupyterlab" not in frozen.lower()


def test_environment_built_from_an_lmod_python_module(hub: Host) -> None:
    cfg = hub.file("/opt/jupyterhub/analysis/pyvenv.cfg").content_string
    assert "home = /opt/demo-modules/software/python/3/bin" in cfg
    assert "home = /usr/bin" in hub.file("/opt/jupyterhub/user/pyvenv.cfg").content_string


@pytest.fixture
def own_kernel(hub: Host) -> Iterator[str]:
    """A kernel bob installs himself; gone afterwards (his home is shared with the hub node)."""
    path = "/home/bob/.local/share/jupyter/kernels/mine"
    hub.run(f"rm -rf {path}")
    yield path
    hub.run(f"rm -rf {path}")


def test_kernels_users_install_themselves_are_listed_and_run(running: HubClient, own_kernel: str, hub: Host) -> None:
    """`python -m ipykernel install --user` from a notebook, as users register their own environments: the kernel
    is listed beside the declared ones (jupyter_env_hide_default_kernel false: no allow-list) and runs."""
    out = running.execute(
        "!/opt/jupyterhub/analysis/bin/python -m ipykernel install --user --name mine --display-name 'Mine (own)'",
        timeout=120,
    )
    assert f"Installed kernelspec mine in {own_kernel}" in out, out
    assert hub.file(f"{own_kernel}/kernel.json").user == "bob"
    specs = running.server_api("GET", "/kernelspecs").json()["kernelspecs"]
    assert set(specs) == {"python3", "demo-tools", "analysis", "ir", "mine"}
    assert specs["mine"]["spec"]["display_name"] == "Mine (own)"
    assert running.execute("import sys; print(sys.prefix)", "mine").strip() == "/opt/jupyterhub/analysis"
