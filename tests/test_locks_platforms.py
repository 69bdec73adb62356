"""Every host lock installs, as it is, on each of the hosts' Pythons (CPython 3.13: Debian 13; 3.11: Debian 12) on
x86_64 Linux with glibc 2.28 or newer (EL 8 too): uv, told that interpreter and platform, resolves the lock to its own
pins, finds a wheel for each and installs it with its hash checked, and the .in file needs nothing more on it.

Uses the package index (uv's cache makes a second run quick). scripts/lock_platforms.py says which platforms."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOST_LOCKS = ("hub", "user", "kernel")


def _lock_platforms() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock_platforms", ROOT / "scripts" / "lock_platforms.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


platforms = _lock_platforms()


def _uv() -> str:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not installed (requirements-dev.txt pins it: run scripts/bootstrap.sh)")
    return uv


def _run(args: list[str]) -> None:
    run = subprocess.run(args, capture_output=True, text=True, check=False)
    assert run.returncode == 0, f"{' '.join(args[:3])} failed:\n{run.stderr[-4000:]}"


def _target(python: str) -> list[str]:
    # uv would look for that Python and, not finding it, try to download one: it is not needed to resolve for it.
    return ["--python-version", python, "--python-platform", platforms.UV_PLATFORM, "--only-binary", ":all:",
            "--no-python-downloads"]  # fmt: skip


@pytest.mark.parametrize("python", platforms.PYTHONS)
@pytest.mark.parametrize("env", HOST_LOCKS)
def test_the_lock_installs_as_it_is(env: str, python: str, tmp_path: Path) -> None:
    lock = ROOT / "environments" / f"{env}.lock.txt"
    pins = platforms.pins(lock)
    uv = _uv()
    # Each pin has a wheel for this Python and platform: the lock alone (no dependencies) resolves to itself.
    resolved = tmp_path / "resolved.txt"
    _run([uv, "pip", "compile", "--quiet", "--no-header", "--no-annotate", "--no-deps", *_target(python),
          str(lock), "-o", str(resolved)])  # fmt: skip
    assert platforms.pins(resolved) == pins
    # The wheels uv picks for it are those the lock's hashes name: each is downloaded and checked.
    target = tmp_path / "target"
    _run([uv, "pip", "install", "--quiet", "--no-deps", "--require-hashes", *_target(python), "--target",
          str(target), "-r", str(lock)])  # fmt: skip
    installed = {platforms.normalize(d.name.split("-")[0]) for d in target.glob("*.dist-info")}
    assert installed == set(pins)
    # The .in file on this Python, within the lock's pins, needs nothing the lock lacks.
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("".join(p + "\n" for p in pins.values()))
    full = tmp_path / "full.txt"
    _run([uv, "pip", "compile", "--quiet", "--no-header", "--no-annotate", *_target(python), "--no-emit-package",
          "pip", "--no-emit-package", "setuptools", "--no-emit-package", "wheel", "-c", str(constraints),
          str(ROOT / "environments" / f"{env}.in"), "-o", str(full)])  # fmt: skip
    needed = platforms.pins(full)
    assert set(needed) <= set(pins)
    # What this Python does not need is said so in the lock (a dependency of the other Python only).
    unneeded = set(pins) - set(needed)
    said = {
        name
        for name in unneeded
        if f"{platforms.MARK} not needed on CPython {python}" in _block(lock.read_text(), pins[name])
    }
    assert said == unneeded


def _block(text: str, pin: str) -> str:
    """A package's lines in a lock: from its pin to the next pin."""
    start = text.index(pin + " ")
    rest = text[start:].split("\n")
    end = next((i for i, line in enumerate(rest[1:], 1) if line[:1].isalnum()), len(rest))
    return "\n".join(rest[:end])


def test_the_platform_tags_are_glibc_2_28_and_older_best_first() -> None:
    tags = platforms.platforms()
    assert tags[0] == "manylinux_2_28_x86_64"
    assert tags[-1] == "manylinux1_x86_64"
    assert tags.index("manylinux2014_x86_64") == tags.index("manylinux_2_17_x86_64") + 1
    assert not any(t.startswith(("manylinux_2_29", "manylinux_2_3", "manylinux_2_4")) for t in tags)
