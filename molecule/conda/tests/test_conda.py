"""The shared conda environment: conda installed from the checksum-verified installer, the environment created
offline from the local channel with exactly its pins, and a user's kernel in it computing in a Slurm job."""

from __future__ import annotations

import json

from condahelpers import CONDA, ENV, PROJECT, installed, kernel_output, pins
from testinfra.host import Host


def test_conda_installed_from_the_verified_installer(hub: Host) -> None:
    assert hub.check_output(f"{CONDA} --version") == "conda 24.7.1"
    expected = (PROJECT / "build" / "conda" / "conda-installer.sh.sha256").read_text().split()[0]
    assert hub.file("/var/cache/jupyterhub-hpc/conda-installer.sh").sha256sum == expected
    condarc = json.loads(hub.file("/opt/jupyterhub/conda/.condarc").content_string)
    assert condarc["offline"] is True and condarc["add_pip_as_python_dependency"] is False
    assert condarc["channels"] == ["file:///var/cache/jupyterhub-hpc/conda-channel"]


def test_environment_is_exactly_its_pins(hub: Host) -> None:
    assert installed(hub) == pins("2025.2")
    assert not hub.file(f"{ENV}/bin/pip").exists
    assert hub.file(ENV).user == "root" and hub.file(ENV).mode == 0o755


def test_kernel_registered_with_envkernel(hub: Host) -> None:
    spec = json.loads(hub.file("/opt/jupyterhub/user/share/jupyter/kernels/shared-conda/kernel.json").content_string)
    assert spec["display_name"] == "Python 3 (shared conda environment)"
    assert spec["argv"][1:5] == ["conda", "run", ENV, "--"]


def test_users_kernel_in_the_environment_computes_in_a_slurm_job(hub: Host, base_url: str) -> None:
    code = (
        "import sys, socket, importlib.metadata as m, tzdata, zmq; "
        "print(sys.prefix, socket.gethostname(), m.version('tzdata'), 6 * 7)"
    )
    assert kernel_output(hub, base_url, code).split() == [ENV, "jhub-mol-node1", "2025.2", "42"]
