"""The project's Python package as JupyterHub and the hub's environment see it: entry points, a deterministic wheel
whose version follows its sources, and a job-output tail that stands alone."""

from __future__ import annotations

import ast
import hashlib
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from jupyterhub.app import JupyterHub

from jupyterhub_hpc.job_tail import output_path
from jupyterhub_hpc.pam import HPCPAMAuthenticator
from jupyterhub_hpc.spawner import HPCSlurmSpawner

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "jupyterhub_hpc"


# -- entry points ----------------------------------------------------------------------------------------------
def test_the_entry_points_are_registered_and_load_the_classes() -> None:
    spawners = {ep.name: ep for ep in entry_points(group="jupyterhub.spawners")}
    authenticators = {ep.name: ep for ep in entry_points(group="jupyterhub.authenticators")}
    assert spawners["hpc-slurm"].value == "jupyterhub_hpc.spawner:HPCSlurmSpawner"
    assert spawners["hpc-slurm"].load() is HPCSlurmSpawner
    assert authenticators["hpc-pam"].value == "jupyterhub_hpc.pam:HPCPAMAuthenticator"
    assert authenticators["hpc-pam"].load() is HPCPAMAuthenticator


def test_jupyterhub_resolves_the_names_the_roles_configure() -> None:
    """roles/batchspawner and roles/jupyterhub_pam set spawner_class and authenticator_class to these names."""
    app = JupyterHub(spawner_class="hpc-slurm", authenticator_class="hpc-pam")
    assert app.spawner_class is HPCSlurmSpawner
    assert app.authenticator_class is HPCPAMAuthenticator


# -- the wheel -------------------------------------------------------------------------------------------------
def build(out: Path, project: Path = ROOT) -> tuple[str, Path]:
    """scripts/build_package.py, as build-wheelhouse.sh runs it: (its lock line, the wheel)."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_package.py"), str(out), str(project)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    return run.stdout.strip(), wheel


def copy_of_the_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "pyproject.toml", project)
    shutil.copytree(PACKAGE, project / "src" / "jupyterhub_hpc", ignore=shutil.ignore_patterns("__pycache__"))
    return project


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    return build(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_is_the_same_bytes_from_the_same_sources(built: tuple[str, Path], tmp_path: Path) -> None:
    line, wheel = built
    again_line, again = build(tmp_path / "again")
    assert again.read_bytes() == wheel.read_bytes()
    assert again_line == line
    # From another place, with other file times: the same wheel.
    project = copy_of_the_project(tmp_path)
    for path in project.rglob("*.py"):
        path.touch()
    assert build(tmp_path / "elsewhere", project)[1].read_bytes() == wheel.read_bytes()


def test_a_changed_source_is_a_new_version(built: tuple[str, Path], tmp_path: Path) -> None:
    """pip keeps an installed version whatever the lock's hash says: a change must change the version."""
    line, wheel = built
    project = copy_of_the_project(tmp_path)
    tail = project / "src" / "jupyterhub_hpc" / "job_tail.py"
    tail.write_text(tail.read_text() + "\n# changed\n")
    changed_line, changed = build(tmp_path / "changed", project)
    version, changed_version = line.split()[0], changed_line.split()[0]
    assert version.startswith("jupyterhub-hpc==0.5.0+") and changed_version.startswith("jupyterhub-hpc==0.5.0+")
    assert changed_version != version
    assert changed.read_bytes() != wheel.read_bytes()


def test_the_lock_line_names_the_wheels_version_and_hash(built: tuple[str, Path]) -> None:
    line, wheel = built
    version = wheel.name.split("-")[1]
    assert line == f"jupyterhub-hpc=={version} --hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}"


def test_the_wheel_holds_the_package_and_its_entry_points_only(built: tuple[str, Path]) -> None:
    _lock_line, wheel = built
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        entry_points_txt = archive.read(f"{dist_info}/entry_points.txt").decode()
        metadata = archive.read(f"{dist_info}/METADATA").decode()
        times = {info.date_time for info in archive.infolist()}
    modules = sorted(p.name for p in PACKAGE.iterdir() if p.is_file() and not p.name.endswith(".pyc"))
    # The modules, and each message catalog's committed .mo (the .po sources and the .pot stay out).
    catalogs = [p.relative_to(PACKAGE).with_suffix(".mo").as_posix() for p in PACKAGE.glob("locale/*/LC_MESSAGES/*.po")]
    packaged = sorted(n.removeprefix("jupyterhub_hpc/") for n in names if n.startswith("jupyterhub_hpc/"))
    assert packaged == sorted(modules + catalogs)
    assert "locale/fr/LC_MESSAGES/jupyterhub_hpc.mo" in packaged
    assert "py.typed" in modules
    assert "hpc-slurm = jupyterhub_hpc.spawner:HPCSlurmSpawner" in entry_points_txt
    assert "hpc-pam = jupyterhub_hpc.pam:HPCPAMAuthenticator" in entry_points_txt
    assert "Requires-Dist" not in metadata  # the hub installs it with --no-deps from a hash lock
    assert times == {(1980, 1, 1, 0, 0, 0)}


def test_the_wheels_catalogs_are_the_committed_mo(built: tuple[str, Path]) -> None:
    """The French catalog in the wheel is the committed .mo as it is (the build runs no catalog tool), which is the
    compiled .po (scripts/i18n.py, with Babel) and which gettext reads."""
    import gettext
    import importlib.util
    import io

    spec = importlib.util.spec_from_file_location("i18n_script", ROOT / "scripts" / "i18n.py")
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    _lock_line, wheel = built
    po = PACKAGE / "locale" / "fr" / "LC_MESSAGES" / "jupyterhub_hpc.po"
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read("jupyterhub_hpc/locale/fr/LC_MESSAGES/jupyterhub_hpc.mo")
    assert data == po.with_suffix(".mo").read_bytes() == script.mo_bytes(po)
    assert gettext.GNUTranslations(io.BytesIO(data)).gettext("Server Options") == "Options du serveur"


def test_a_catalog_without_its_mo_stops_the_build(tmp_path: Path) -> None:
    project = copy_of_the_project(tmp_path)
    mo = project / "src" / "jupyterhub_hpc" / "locale" / "fr" / "LC_MESSAGES" / "jupyterhub_hpc.mo"
    for broken in (None, b"not a catalog"):
        if broken is None:
            mo.unlink()
        else:
            mo.write_bytes(broken)
        run = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "build_package.py"), str(tmp_path / "out"), str(project)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert run.returncode != 0
        assert "jupyterhub_hpc.mo is missing or unreadable" in run.stderr and "i18n.py compile" in run.stderr
        assert not (tmp_path / "out").exists()


# -- the job-output tail ---------------------------------------------------------------------------------------
def test_the_job_tail_imports_only_the_standard_library() -> None:
    """It runs as the user with ``python3 -I -S`` from a root-owned copy: nothing of the package, nothing installed."""
    tree = ast.parse((PACKAGE / "job_tail.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module is not None, "no relative import"
            imported.add(node.module.split(".")[0])
    assert imported and imported <= sys.stdlib_module_names, imported - sys.stdlib_module_names


def run_job_tail(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    copy = tmp_path / "job_tail.py"  # as the role installs it: the file alone
    shutil.copy(PACKAGE / "job_tail.py", copy)
    return subprocess.run([sys.executable, "-I", "-S", str(copy), *args], capture_output=True, check=False)


def test_the_job_tail_runs_isolated_from_any_folder(tmp_path: Path) -> None:
    (tmp_path / "out-42.log").write_text("hello\n")
    # An absolute pattern (Slurm's --output may be one): the test leaves the running user's home alone.
    run = run_job_tail(tmp_path, "100", f"{tmp_path}/out-%j.log", "42")
    assert (run.returncode, run.stdout) == (0, b"6\nhello\n")


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["100"],
        ["100", "out-%j.log"],  # the old interface: a path
        ["100", "out-%j.log", "42", "extra"],
        ["100", "out-%j.log", "42 "],
        ["100", "out-%j.log", "4x"],
        ["100", "out-%j.log", "\u0664\u0662"],  # digits, not ASCII ones
        ["100", "out-%j.log", "12345678901"],  # above any Slurm job id
        ["x", "out-%j.log", "42"],
        ["100", "", "42"],
        ["100", "../bob/out-%j.log", "42"],
        ["100", "logs/../../bob/out-%j.log", "42"],
        ["100", "/home/bob/..", "42"],
        ["100", "out-%x.log", "42"],
        ["100", "out-%5j.log", "42"],
        ["100", "out-%j.log%", "42"],
        ["100", "out\\%j.log", "42"],
    ],
)
def test_the_job_tail_refuses_other_arguments(tmp_path: Path, args: list[str]) -> None:
    """MAX_BYTES OUTPUT_PATTERN JOB_ID, nothing else: a pattern below the home directory with %j, %u, %% only."""
    run = run_job_tail(tmp_path, *args)
    assert (run.returncode, run.stdout) == (2, b"")
    assert run.stderr.startswith(b"usage: job_tail.py MAX_BYTES OUTPUT_PATTERN JOB_ID")


def test_the_job_tail_finds_the_output_from_the_users_own_home_and_name() -> None:
    assert output_path(".jupyterhub-slurm-%j.log", "4242", "alice", "/home/alice") == (
        "/home/alice/.jupyterhub-slurm-4242.log"
    )
    assert output_path("jobs/%u/%%j-%j.%%", "7", "alice", "/home/alice") == "/home/alice/jobs/alice/%j-7.%"
    for pattern in ("../x-%j", "a/../../x", "%", "%a", "%%%", "a\\b", "a\0b"):
        with pytest.raises(ValueError):
            output_path(pattern, "7", "alice", "/home/alice")


def test_no_class_of_the_package_is_above_300_lines() -> None:
    """Each class one concern a reader can hold (docs/design.md); functions are held to a complexity of 15 by
    ruff's C901 (pyproject.toml)."""
    package = Path(__file__).resolve().parents[1] / "src" / "jupyterhub_hpc"
    sizes = {
        f"{path.name}:{node.name}": (node.end_lineno or node.lineno) - node.lineno + 1
        for path in sorted(package.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
    }
    assert len(sizes) > 20
    assert {name: lines for name, lines in sizes.items() if lines > 300} == {}
