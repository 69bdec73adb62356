"""The platforms the hosts' locks are for, and the wheels each of them installs.

    python scripts/lock_platforms.py pythons                 # the hosts' Pythons: "3.13 3.11"
    python scripts/lock_platforms.py pip-flags PY            # pip download's target options for CPython PY
    python scripts/lock_platforms.py uv-platform             # uv's --python-platform for the same: glibc 2.28
    python scripts/lock_platforms.py hashes LOCK [--python PY]... [--in IN --uv UV]

The hosts (Debian 13: CPython 3.13, glibc 2.41; Debian 12: CPython 3.11, glibc 2.36; EL 8: glibc 2.28) install the
same pins from one wheelhouse, x86_64 wheels only, so every binary wheel must be manylinux_2_28 or older (a
manylinux_2_34 wheel does not load on EL 8). pip picks, among a version's wheels, the best one for the interpreter
and platform it is told (``pip-flags``): that is what scripts/build-wheelhouse.sh downloads for each Python, and so
what each host finds in the wheelhouse.

``hashes`` rewrites a lock uv made (scripts/lock-environments.sh) so that each package's hashes are exactly those
of the wheels pip picks for each Python (by default both of the hosts'), and fails, naming the package, when:

* a pin has no wheel for one of the Pythons on glibc 2.28 (a lock per Python, or another version, is needed);
* a pin's Linux wheel needs a newer glibc and only its pure-Python fallback would install on 2.28 (e.g. debugpy
  1.8.17 and later: manylinux_2_34 only, the fallback lacks the compiled speedups): pin an older release;
* with ``--in``: the .in file, resolved by uv for another of the Pythons within the lock's pins, needs a package
  the lock lacks. A package only one Python needs (a dependency of older Pythons only) stays in the lock and is
  said so in a comment: it installs on the other one too, unused.

Only pip (the Python running this) and uv are used: the package index as any pip or uv install sees it.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

# The hosts' interpreters, the primary platform's first (Debian 13), and the oldest glibc they run on (EL 8).
PYTHONS = ("3.13", "3.11")
GLIBC_FLOOR = 28
# glibc of the newest platform (Debian 13): a wheel that needs more than the floor but no more than this is what a
# host would pick from the index; on the floor it is missing.
GLIBC_NEWEST = 41
# As uv names the floor's platform (--python-platform).
UV_PLATFORM = f"x86_64-manylinux_2_{GLIBC_FLOOR}"
MARK = "# platforms:"  # the lines this script adds (and removes again before adding them)


def platforms(glibc_minor: int = GLIBC_FLOOR) -> list[str]:
    """pip's --platform values for x86_64 Linux with glibc 2.<glibc_minor>, best first (as packaging orders them:
    each legacy alias right after the tag it stands for). pip does not widen a given manylinux tag to older ones."""
    aliases = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags = []
    for minor in range(glibc_minor, 4, -1):
        tags.append(f"manylinux_2_{minor}_x86_64")
        if minor in aliases:
            tags.append(f"{aliases[minor]}_x86_64")
    return tags


def pip_flags(python: str, glibc_minor: int = GLIBC_FLOOR) -> list[str]:
    """pip download's options for wheels of CPython `python` (e.g. "3.11") on x86_64 Linux, glibc 2.<glibc_minor>."""
    abi = "cp" + python.replace(".", "")
    flags = ["--only-binary=:all:", "--python-version", python, "--implementation", "cp", "--abi", abi]
    for tag in platforms(glibc_minor):
        flags += ["--platform", tag]
    return flags


def pins(lock: Path) -> dict[str, str]:
    """name (normalized) -> "name==version" of every package a lock pins."""
    found = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if match:
            found[normalize(match[1])] = f"{match[1]}=={match[2]}"
    return found


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def chosen(requirements: list[str], python: str, glibc_minor: int = GLIBC_FLOOR) -> dict[str, tuple[str, str]]:
    """name -> (wheel file name, sha256) pip picks for each requirement (no dependencies), without downloading it.
    A requirement with no wheel for this target fails (SystemExit with pip's message)."""
    with tempfile.TemporaryDirectory() as tmp:
        reqs, report = Path(tmp) / "requirements.txt", Path(tmp) / "report.json"
        reqs.write_text("".join(r + "\n" for r in requirements))
        run = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps", "--quiet",
             "--disable-pip-version-check", *pip_flags(python, glibc_minor), "--report", str(report),
             "-r", str(reqs)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if run.returncode:
            errors = "\n".join(line for line in run.stderr.splitlines() if not line.startswith("WARNING: Location"))
            raise SystemExit(f"lock_platforms: no wheel for CPython {python} on glibc 2.{glibc_minor}:\n{errors}")
        installs = json.loads(report.read_text())["install"]
    return {
        normalize(item["metadata"]["name"]): (
            item["download_info"]["url"].rsplit("/", 1)[-1],
            item["download_info"]["archive_info"]["hashes"]["sha256"],
        )
        for item in installs
    }


def _pure(wheel: str) -> bool:
    return wheel.endswith("-none-any.whl")


def wheels_per_python(lock: Path, pythons: list[str]) -> dict[str, dict[str, tuple[str, str]]]:
    """python -> name -> (wheel, sha256), checked: a binary wheel on the floor for every pin that has one on the
    newest platform."""
    pinned = list(pins(lock).values())
    result, refused = {}, []
    for python in pythons:
        floor = chosen(pinned, python)
        newest = chosen(pinned, python, GLIBC_NEWEST)
        for name, (wheel, _hash) in sorted(floor.items()):
            if _pure(wheel) and not _pure(newest[name][0]):
                refused.append(
                    f"{name}: on CPython {python} with glibc 2.{GLIBC_FLOOR} only its pure-Python wheel ({wheel}) "
                    f"installs; its Linux wheel is {newest[name][0]}: pin a release with a manylinux_2_{GLIBC_FLOOR} "
                    "(or older) wheel in the .in file"
                )
        result[python] = floor
    if refused:
        raise SystemExit(f"lock_platforms: {lock}:\n  " + "\n  ".join(refused))
    return result


def only_some(lock: Path, source: Path, uv: str, pythons: list[str], locked_for: str) -> dict[str, list[str]]:
    """name -> the Pythons (other than `locked_for`, which uv locked it for) whose resolution of `source` within
    the lock's pins does not need it. Fails when one needs a package the lock does not have."""
    locked = pins(lock)
    unneeded: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("".join(p + "\n" for p in locked.values()))
        for python in pythons:
            if python == locked_for:
                continue
            out = Path(tmp) / f"resolved-{python}.txt"
            subprocess.run(
                [uv, "pip", "compile", "--quiet", "--no-python-downloads", "--no-header", "--no-annotate",
                 "--only-binary", ":all:",
                 "--python-version", python, "--python-platform", UV_PLATFORM, "--no-emit-package", "pip",
                 "--no-emit-package", "setuptools", "--no-emit-package", "wheel", "-c", str(constraints),
                 str(source), "-o", str(out)],
                check=True,
            )  # fmt: skip
            resolved = pins(out)
            missing = sorted(set(resolved) - set(locked))
            if missing:
                raise SystemExit(
                    f"lock_platforms: {source} on CPython {python} needs {', '.join(missing)}, which {lock} (locked "
                    f"for {locked_for}) lacks: lock each Python on its own"
                )
            for name in set(locked) - set(resolved):
                unneeded.setdefault(name, []).append(python)
    return unneeded


def rewrite(lock: Path, wheels: dict[str, dict[str, tuple[str, str]]], unneeded: dict[str, list[str]]) -> None:
    """The lock with each package's hashes replaced by its wheels' (sorted), this script's comments anew."""
    pythons = list(wheels)
    out: list[str] = []
    lines = [line for line in lock.read_text().splitlines() if not line.lstrip().startswith(MARK)]
    header_done = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if not header_done and not line.startswith("#"):
            names = " and ".join(pythons)
            out += [
                f"{MARK} CPython {names}, x86_64 Linux with glibc 2.{GLIBC_FLOOR} or newer (manylinux_2_{GLIBC_FLOOR}"
                " and older wheels);",
                f"{MARK} each package's hashes: the wheel pip picks for {'each' if len(pythons) > 1 else 'it'} "
                "(scripts/lock_platforms.py).",
            ]
            header_done = True
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if not match:
            out.append(line)
            i += 1
            continue
        name = normalize(match[1])
        spec = line.split(" \\")[0].rstrip()
        i += 1
        while i < len(lines) and lines[i].lstrip().startswith("--hash="):
            i += 1
        hashes = sorted({wheels[p][name][1] for p in pythons if name in wheels[p]})
        out.append(spec + " \\")
        out += [f"    --hash=sha256:{h} \\" for h in hashes[:-1]] + [f"    --hash=sha256:{hashes[-1]}"]
        while i < len(lines) and lines[i].startswith("    #"):
            out.append(lines[i])
            i += 1
        if name in unneeded:
            out.append(f"    {MARK} not needed on CPython {', '.join(unneeded[name])}: installed there too, unused")
    lock.write_text("\n".join(out) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("pythons")
    sub.add_parser("uv-platform")
    flags = sub.add_parser("pip-flags")
    flags.add_argument("python")
    hashes = sub.add_parser("hashes")
    hashes.add_argument("lock", type=Path)
    hashes.add_argument("--python", action="append", help="a target CPython (repeat; default: the hosts')")
    hashes.add_argument("--in", dest="source", type=Path, help="the .in file, resolved again for the other Pythons")
    hashes.add_argument("--uv", default="uv")
    args = parser.parse_args()
    if args.command == "pythons":
        print(" ".join(PYTHONS))
    elif args.command == "uv-platform":
        print(UV_PLATFORM)
    elif args.command == "pip-flags":
        print(" ".join(pip_flags(args.python)))
    else:
        # The oldest first: uv locked for it (scripts/lock-environments.sh).
        pythons = sorted(args.python or PYTHONS, key=lambda v: tuple(int(n) for n in v.split(".")))
        unneeded = only_some(args.lock, args.source, args.uv, pythons, pythons[0]) if args.source else {}
        wheels = wheels_per_python(args.lock, pythons)
        rewrite(args.lock, wheels, unneeded)
        counts = ", ".join(f"{len(w)} wheels for {p}" for p, w in wheels.items())
        print(f"{args.lock}: {counts} ({len({h for w in wheels.values() for _wheel, h in w.values()})} distinct)")


if __name__ == "__main__":
    main()
