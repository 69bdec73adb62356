"""The conda backend's rendered files. No Miniconda installer can be obtained on this machine (no route to its
download site), so the backend is not run end to end here: see molecule/README.md for how to run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_conda_files_are_pinned_and_offline(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "tests/playbooks/render_conda_files.yml",
            "-e",
            f"render_dir={tmp_path}",
        ],
        cwd=ROOT,
        env={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-2000:]
    condarc = yaml.safe_load((tmp_path / "condarc").read_text())
    assert condarc == {
        "offline": True,
        "channels": ["file:///srv/conda-channel"],
        "channel_priority": "strict",
        "auto_update_conda": False,
    }
    env = yaml.safe_load((tmp_path / "analysis.environment.yml").read_text())
    assert env == {
        "name": "analysis",
        "channels": ["file:///srv/conda-channel", "nodefaults"],
        "dependencies": ["ipykernel=6.29.5", "numpy=1.26.4", "python=3.11.9"],
    }


def test_role_runs_conda_offline_with_a_verified_installer() -> None:
    tasks = yaml.safe_load((ROOT / "roles" / "jupyter_env" / "tasks" / "conda.yml").read_text())
    by_name = {task["name"]: task for task in tasks}
    download = by_name["Download the conda installer"]["ansible.builtin.get_url"]
    assert download["checksum"] == "sha256:{{ jupyter_env_conda_installer_sha256 }}"
    assert (
        "stat.checksum == jupyter_env_conda_installer_sha256"
        in by_name["Refuse an installer that is not the expected one"]["ansible.builtin.assert"]["that"]
    )
    install = by_name["Install conda in batch mode"]["ansible.builtin.command"]
    assert install["argv"][-3:] == ["-b", "-p", "{{ jupyter_env_conda_prefix }}"]
    assert install["creates"] == "{{ jupyter_env_conda_prefix }}/bin/conda"
    create = by_name["Create or update each conda environment, offline"]["ansible.builtin.command"]["argv"]
    assert "--offline" in create and "--file" in create
