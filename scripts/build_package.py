"""Build the project's Python package (src/jupyterhub_hpc) into one wheel, deterministically and offline.

    python scripts/build_package.py OUT_DIR [PROJECT_DIR]

Prints the wheel's lock line, ``jupyterhub-hpc==<version> --hash=sha256:<sha256 of the wheel>``, which
build-wheelhouse.sh adds to the hub environment's lock inside the wheelhouse.

* Same sources, same bytes: the wheel is built from a clean copy of what goes into it (pyproject.toml and the
  package's files, no build/ or __pycache__ left over from anything else), with fixed modes (0644/0755, umask 022)
  and fixed file times (SOURCE_DATE_EPOCH=0: the wheel's zip entries are dated 1980-01-01, the earliest a zip file
  can say), by the setuptools of the Python that runs this script (the controller's virtualenv, pinned in
  requirements-dev.txt), with no build isolation and no index.
* Another source, another version: the version is pyproject's plus a local label, the first 16 hex digits of a
  digest of the package's files and of the pyproject tables that shape the wheel (``0.5.0+1f2e...``). pip installs
  a requirement whose version it already has as "already satisfied", whatever the hash says, so a change without a
  new version would never reach the hub; a new label makes pip replace the package, and the hub environment's
  change restarts the hub (jupyter_env's "jupyter environment changed"). Tool settings (ruff, mypy, pytest) do not
  count.
* The message catalogs go in as committed: each compiled ``.mo`` beside its ``.po`` (scripts/i18n.py compiles them
  with Babel and its ``check`` fails if a ``.mo`` is not its ``.po``'s), so they count in the version like any file
  and the build runs no catalog tool. A ``.po`` without a readable ``.mo`` stops the build.
"""

from __future__ import annotations

import gettext
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import tomllib
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

NAME = "jupyterhub-hpc"
PACKAGE = "jupyterhub_hpc"


def package_files(project: Path) -> list[Path]:
    """The package's files, relative to ``project``: everything under src/jupyterhub_hpc but compiled files."""
    root = project / "src" / PACKAGE
    found = [
        path.relative_to(project)
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
    ]
    return sorted(found, key=lambda path: path.as_posix())


def wheel_settings(pyproject: dict[str, Any]) -> dict[str, Any]:
    """The pyproject tables that shape the wheel (not the tools' settings)."""
    return {
        "build-system": pyproject.get("build-system"),
        "project": pyproject.get("project"),
        "tool.setuptools": pyproject.get("tool", {}).get("setuptools"),
    }


def source_digest(project: Path) -> str:
    """First 16 hex digits of the sha256 of the wheel's inputs: pyproject's wheel tables, each file's path and bytes."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    digest = hashlib.sha256(json.dumps(wheel_settings(pyproject), sort_keys=True).encode())
    for path in package_files(project):
        data = (project / path).read_bytes()
        digest.update(f"\0{path.as_posix()}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()[:16]


def staged_copy(project: Path, stage: Path, version: str) -> None:
    """pyproject.toml (with ``version``) and the package's files in ``stage``, modes fixed."""
    text = (project / "pyproject.toml").read_text()
    base = tomllib.loads(text)["project"]["version"]
    line = f'version = "{base}"'
    if text.count(line) != 1:
        raise SystemExit(f"build_package: pyproject.toml must have exactly one line {line!r}")
    staged = text.replace(line, f'version = "{version}"')
    if tomllib.loads(staged)["project"]["version"] != version:
        raise SystemExit("build_package: could not set the version in the staged pyproject.toml")
    (stage / "pyproject.toml").write_text(staged)
    for path in package_files(project):
        target = stage / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(project / path, target)
    for path in [stage, *stage.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def check_catalogs(project: Path) -> None:
    """Each message catalog (locale/<lang>/LC_MESSAGES/*.po) has its compiled .mo beside it, which gettext reads: the
    wheel takes the committed .mo as it is (package-data takes the .mo only), so its bytes are the sources' and no
    catalog tool runs here. That the .mo is the compiled .po is ``scripts/i18n.py check``'s (Babel, on the
    controller; tests/test_i18n_unit.py runs it)."""
    for po in sorted((project / "src" / PACKAGE / "locale").glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        try:
            with mo.open("rb") as data:
                gettext.GNUTranslations(data)
        except (OSError, ValueError, struct.error) as err:
            raise SystemExit(
                f"build_package: {mo.relative_to(project)} is missing or unreadable ({err}): "
                "run scripts/i18n.py compile"
            ) from err


def check_build_backend(pyproject: dict[str, Any]) -> None:
    """This Python has what pyproject's [build-system] requires (no isolation: nothing is downloaded)."""
    for text in pyproject["build-system"]["requires"]:
        wanted = Requirement(text)
        try:
            found: str | None = installed_version(wanted.name)
        except PackageNotFoundError:
            found = None
        if found is None or not wanted.specifier.contains(found, prereleases=True):
            raise SystemExit(
                f"build_package: building the wheel needs {text} in {sys.executable} (it has {found or 'none'}); "
                "requirements-dev.txt pins it: run scripts/bootstrap.sh"
            )


def build(out: Path, project: Path) -> Path:
    """Build the wheel into ``out``; returns its path."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    check_build_backend(pyproject)
    check_catalogs(project)
    base = pyproject["project"]["version"]
    version = f"{base}+{source_digest(project)}"
    out.mkdir(parents=True, exist_ok=True)
    os.umask(0o022)
    with tempfile.TemporaryDirectory(prefix="jupyterhub-hpc-build-") as tmp:
        stage, dist = Path(tmp) / "src", Path(tmp) / "dist"
        stage.mkdir()
        staged_copy(project, stage, version)
        env = {**os.environ, "SOURCE_DATE_EPOCH": "0", "PYTHONHASHSEED": "0"}
        # setuptools' PEP 517 hook, in this Python (no isolation, nothing downloaded).
        hook = "import sys; from setuptools import build_meta; build_meta.build_wheel(sys.argv[1])"
        run = subprocess.run(
            [sys.executable, "-c", hook, str(dist)], cwd=stage, env=env, capture_output=True, text=True, check=False
        )
        wheels = sorted(dist.glob("*.whl")) if dist.is_dir() else []
        if run.returncode != 0 or len(wheels) != 1:
            sys.stderr.write(run.stdout[-3000:] + run.stderr[-3000:])
            raise SystemExit(f"build_package: setuptools did not build the wheel (exit status {run.returncode})")
        wheel = out / wheels[0].name
        shutil.copyfile(wheels[0], wheel)
    return wheel


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    project = Path(argv[2] if len(argv) == 3 else Path(__file__).resolve().parents[1]).resolve()
    wheel = build(Path(argv[1]), project)
    version = wheel.name.split("-")[1]
    print(f"{NAME}=={version} --hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
