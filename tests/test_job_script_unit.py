"""The job script run by bash, as Slurm runs it on a shared node, from the attacker's side: another user made the
runtime directory of the next job id ahead of time, or the directory the job keeps its files in is one others may
write. The Molecule scenario replays the first against a real job (molecule/default/tests/test_attacks_round3.py)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import jobscript
import pytest

# What the "server" prints: where its runtime files and temporary files go, and that directory's owner and mode.
SERVER = 'sh -c \'echo "$JUPYTER_RUNTIME_DIR $TMPDIR $(stat -c %u:%a "$JUPYTER_RUNTIME_DIR")"\''


def run_job(tmp_path: Path, parent: Path, prologue: str = "") -> subprocess.CompletedProcess[str]:
    script = jobscript.render_job_script(
        {}, srun="", cmd=SERVER, batchspawner_job_env_init=[], batchspawner_job_prologue=prologue
    )
    path = tmp_path / "job.sh"
    path.write_text(script)
    env = {"PATH": os.environ["PATH"], "SLURM_JOB_ID": "77", "TMPDIR": str(parent), "HOME": str(tmp_path)}
    return subprocess.run(["bash", str(path)], env=env, capture_output=True, text=True, timeout=30, check=False)


def server_line(job: subprocess.CompletedProcess[str]) -> list[str]:
    (line,) = [line for line in job.stdout.splitlines() if line.startswith("/")]
    return line.split()


def test_a_directory_made_in_advance_is_never_used(tmp_path: Path) -> None:
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    trap = shared / "jupyter-77"  # what another user of the node made for the next job id (mkdir -p took it)
    trap.mkdir()
    trap.chmod(0o777)
    job = run_job(tmp_path, shared)
    assert job.returncode == 0, job.stderr
    runtime, tmpdir, owner_mode = server_line(job)
    assert runtime != str(trap) and runtime.startswith(f"{shared}/jupyter-77-") and tmpdir == runtime
    assert owner_mode == f"{os.getuid()}:700"
    assert not Path(runtime).exists()  # removed when the job ended
    assert list(trap.iterdir()) == []


def test_the_private_directory_is_the_servers_whatever_a_prologue_sets(tmp_path: Path) -> None:
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    job = run_job(tmp_path, shared, prologue="export TMPDIR=/tmp JUPYTER_RUNTIME_DIR=/tmp/elsewhere")
    runtime, tmpdir, _mode = server_line(job)
    assert runtime.startswith(f"{shared}/jupyter-77-") and tmpdir == runtime


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_a_parent_others_may_write_without_the_sticky_bit_is_refused(tmp_path: Path, mode: int) -> None:
    """There another user could rename the job's directory away and put hers in its place."""
    open_dir = tmp_path / "scratch"
    open_dir.mkdir()
    open_dir.chmod(mode)
    job = run_job(tmp_path, open_dir)
    assert job.returncode == 1
    assert "is writable by other users and not sticky" in job.stderr
    assert [p.name for p in open_dir.iterdir()] == []


def test_a_parent_of_the_users_own_is_accepted(tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    own.chmod(stat.S_IRWXU)
    job = run_job(tmp_path, own)
    assert job.returncode == 0, job.stderr
