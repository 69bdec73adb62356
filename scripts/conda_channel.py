"""The pieces of a local conda channel and a Miniconda-style installer, made with no conda download.

Run by scripts/build-conda-channel.sh with the Python of its tools venv (py-rattler, conda-package-handling,
packaging), one step at a time:

    python conda_channel.py python-package STAGE PLACEHOLDER VERSION OUT   # CPython `make install DESTDIR=STAGE`
    python conda_channel.py wheels OUT PLACEHOLDER WHEEL...                # wheels -> conda packages
    python conda_channel.py conda CONDA_LOCK_WHEEL OUT DEPENDS...          # conda, from conda-lock's vendored copy
    python conda_channel.py index CHANNEL                                  # repodata.json (py-rattler)
    python conda_channel.py installer CHANNEL OUT SPEC...                  # base environment + batch installer

What the conda packages are (docs/conda.md has the limits):

* ``python``: CPython built from source with a long placeholder ``--prefix``; every file that holds the placeholder
  is listed in ``info/paths.json`` (text or binary mode), so conda (or py-rattler) rewrites it at install time, as
  for any conda-forge package. No dependencies: it links the build host's system libraries (a Debian 12 package).
* wheels: a pure wheel becomes a ``noarch: python`` package (``site-packages/``, entry points in ``link.json``), a
  binary one a ``linux-64`` package pinned to the Python minor version. ``.data/data`` goes to the prefix root (so
  ``share/jupyter/kernels`` lands where Jupyter looks); dependencies are the wheel's ``Requires-Dist`` whose markers
  hold for the channel's Python (PY_MINOR) on Linux with no extra. Names are the package index's normalized names.
* ``conda``: the conda that conda-lock vendors (``conda_lock/_vendor/conda``), its imports renamed back.

Every package gets one build, and files and archives get fixed times, so the same inputs give the same channel.
"""

from __future__ import annotations

import asyncio
import email.parser
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# The channel's python (build-conda-channel.sh builds CPython 3.13.5). Markers are evaluated by the running
# interpreter, so the tools venv runs this same minor version (build-conda-channel.sh checks it).
PY_MINOR = "3.13"
PY_NEXT = "3.14"
PY_TAG = "py" + PY_MINOR.replace(".", "")
# Times written into every package (index.json, ms) and onto every packaged file (s): the same inputs, the same bytes.
TIMESTAMP_MS = 1_700_000_000_000
MTIME = TIMESTAMP_MS // 1000
SITE_PACKAGES = f"lib/python{PY_MINOR}/site-packages"
# The installer's base environment is linked at a staging path of this length, which the installer rewrites to the
# target prefix: the target prefix may be at most this long (binary files are rewritten in place, null-padded).
STAGING_LENGTH = 200


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(root: Path) -> list[Path]:
    """Every file and symlink under root (not info/), sorted."""
    found = [p for p in root.rglob("*") if (p.is_symlink() or p.is_file()) and p.relative_to(root).parts[0] != "info"]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _paths_entry(root: Path, path: Path, placeholder: str | None) -> dict[str, Any]:
    rel = path.relative_to(root).as_posix()
    if path.is_symlink():
        return {"_path": rel, "path_type": "softlink", "sha256": hashlib.sha256(b"").hexdigest(), "size_in_bytes": 0}
    entry: dict[str, Any] = {
        "_path": rel,
        "path_type": "hardlink",
        "sha256": _sha256(path),
        "size_in_bytes": path.stat().st_size,
    }
    # Compiled bytecode only names its source for tracebacks: never rewritten (a padded string would corrupt nothing
    # but reads badly), as conda-build does not list it either.
    if placeholder and not rel.endswith(".pyc"):
        data = path.read_bytes()
        if placeholder.encode() in data:
            entry["prefix_placeholder"] = placeholder
            entry["file_mode"] = "binary" if b"\0" in data else "text"
    return entry


def _package(root: Path, index: dict[str, Any], out: Path, placeholder: str | None = None) -> Path:
    """Write root's info/ (index.json, paths.json, files) and pack root into OUT/<subdir>/<name>-<ver>-<build>.conda."""
    from conda_package_handling import api

    info = root / "info"
    info.mkdir(exist_ok=True)
    files = _files(root)
    paths = [_paths_entry(root, p, placeholder) for p in files]
    index = {**index, "timestamp": TIMESTAMP_MS}
    (info / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    (info / "paths.json").write_text(json.dumps({"paths": paths, "paths_version": 1}, indent=2, sort_keys=True) + "\n")
    (info / "files").write_text("".join(e["_path"] + "\n" for e in paths))
    for p in [root, *root.rglob("*")]:
        os.utime(p, (MTIME, MTIME), follow_symlinks=False)
    subdir = out / str(index["subdir"])
    subdir.mkdir(parents=True, exist_ok=True)
    name = f"{index['name']}-{index['version']}-{index['build']}"
    # zstd level 19 (the default) takes minutes for the whole channel; 9 is nearly as small.
    api.create(str(root), None, f"{name}.conda", out_folder=str(subdir), compression_level=9)
    return subdir / f"{name}.conda"


# --- python -------------------------------------------------------------------------------------------------------


def python_package(stage: Path, placeholder: str, version: str, out: Path) -> Path:
    """The conda package `python` from CPython's `make install DESTDIR=stage` under the placeholder prefix."""
    root = stage / placeholder.lstrip("/")
    lib = root / "lib" / f"python{PY_MINOR}"
    # Only needed to embed Python in another program; 40 MB.
    for static in [*lib.glob("config-*/libpython*.a"), *(root / "lib").glob("libpython*.a")]:
        static.unlink()
    shutil.rmtree(lib / "test", ignore_errors=True)
    (root / "bin" / "python").unlink(missing_ok=True)
    (root / "bin" / "python").symlink_to(f"python{PY_MINOR}")
    index = {
        "name": "python",
        "version": version,
        "build": "jhpc_0",
        "build_number": 0,
        "depends": [],
        "license": "PSF-2.0",
        "subdir": "linux-64",
        "arch": "x86_64",
        "platform": "linux",
    }
    return _package(root, index, out, placeholder)


# --- wheels -------------------------------------------------------------------------------------------------------


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _conda_spec(requirement: str) -> str | None:
    """A Requires-Dist line as a conda dependency, or None when its marker does not hold here (no extra)."""
    from packaging.requirements import Requirement

    req = Requirement(requirement)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        return None
    name = _canonical(req.name)
    specifiers = ",".join(sorted(str(s) for s in req.specifier if s.operator != "==="))
    return f"{name} {specifiers}" if specifiers and _valid_spec(f"{name} {specifiers}") else name


def _valid_spec(spec: str) -> bool:
    import rattler

    try:
        rattler.MatchSpec(spec)
    except Exception:
        return False
    return True


def _entry_points(dist_info: Path) -> list[str]:
    """console_scripts and gui_scripts as conda's "name = module:function" lines."""
    path = dist_info / "entry_points.txt"
    if not path.exists():
        return []
    import configparser

    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return [
        f"{name} = {target.strip()}"
        for section in ("console_scripts", "gui_scripts")
        if parser.has_section(section)
        for name, target in sorted(parser.items(section))
    ]


ENTRY_POINT = """#!{prefix}/bin/python
import re
import sys
from {module} import {attr}
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw?|\\.exe)?$", "", sys.argv[0])
    sys.exit({func}())
"""


def _for_this_python(interpreter: str, abi: str) -> bool:
    """A binary wheel's tag fits CPython PY_MINOR: its own ABI, or the stable ABI of the same or an older 3.x."""
    this = "cp" + PY_MINOR.replace(".", "")
    if abi == this:
        return True
    match = re.fullmatch(r"cp3(\d+)", interpreter)
    return abi == "abi3" and match is not None and int(match[1]) <= int(PY_MINOR.split(".")[1])


def wheel_package(wheel: Path, out: Path, placeholder: str) -> Path:
    """One wheel as one conda package (noarch python when pure, linux-64 for this Python when not)."""
    from packaging.utils import parse_wheel_filename

    name, version, _build, tags = parse_wheel_filename(wheel.name)
    pure = all(t.abi == "none" and t.platform == "any" for t in tags)
    if not pure and not any(_for_this_python(t.interpreter, t.abi) for t in tags):
        # The locks also name other Pythons' wheels (scripts/lock_platforms.py): only this one's may come here.
        raise SystemExit(f"{wheel.name}: not a wheel for CPython {PY_MINOR}")
    site = "site-packages" if pure else SITE_PACKAGES
    scripts = "python-scripts" if pure else "bin"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "pkg"
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.infolist():
                if member.is_dir():
                    continue
                parts = member.filename.split("/")
                if parts[0].endswith(".data") and len(parts) > 2:
                    kind, rest = parts[1], "/".join(parts[2:])
                    target = {
                        "purelib": f"{site}/{rest}",
                        "platlib": f"{site}/{rest}",
                        "scripts": f"{scripts}/{rest}",
                        "headers": f"include/{_canonical(str(name))}/{rest}",
                        "data": rest,
                    }[kind]
                else:
                    target = f"{site}/{member.filename}"
                dest = root / target
                if ".." in Path(target).parts:
                    raise SystemExit(f"{wheel.name}: refusing a path outside the package: {member.filename}")
                dest.parent.mkdir(parents=True, exist_ok=True)
                data = archive.read(member)
                if target.startswith(f"{scripts}/") and data.startswith(b"#!python"):
                    data = b"#!/usr/bin/env python" + data[len(b"#!python") :]
                dest.write_bytes(data)
                executable = (member.external_attr >> 16) & 0o111 or target.startswith(f"{scripts}/")
                dest.chmod(0o755 if executable else 0o644)
        dist_info = next((root / site).glob("*.dist-info"))
        metadata = email.parser.Parser().parsestr((dist_info / "METADATA").read_text())
        (dist_info / "RECORD").unlink(missing_ok=True)
        (dist_info / "INSTALLER").write_text("conda\n")
        depends = sorted(
            {spec for r in metadata.get_all("Requires-Dist") or [] if (spec := _conda_spec(r)) is not None}
        )
        requires_python = metadata.get("Requires-Python")
        python = f"python {requires_python}" if requires_python else "python"
        entry_points = _entry_points(dist_info)
        index: dict[str, Any] = {
            "name": _canonical(str(name)),
            "version": str(version),
            "build_number": 0,
            "license": metadata.get("License-Expression") or "",
        }
        if pure:
            index |= {"build": "py_0", "subdir": "noarch", "noarch": "python"}
            index["depends"] = sorted({python if _valid_spec(python) else "python", *depends})
            link = {"noarch": {"type": "python", "entry_points": entry_points}, "package_metadata_version": 1}
            (root / "info").mkdir()
            (root / "info" / "link.json").write_text(json.dumps(link, indent=2, sort_keys=True) + "\n")
        else:
            index |= {"build": f"{PY_TAG}_0", "subdir": "linux-64", "arch": "x86_64", "platform": "linux"}
            index["depends"] = sorted({f"python >={PY_MINOR},<{PY_NEXT}.0a0", *depends})
            for line in entry_points:
                script, target = (s.strip() for s in line.split("=", 1))
                module, func = target.split(":")
                path = root / "bin" / script
                path.parent.mkdir(exist_ok=True)
                attr = func.split(".")[0]
                path.write_text(ENTRY_POINT.format(prefix=placeholder, module=module, attr=attr, func=func))
                path.chmod(0o755)
        return _package(root, index, out, placeholder)


# --- conda --------------------------------------------------------------------------------------------------------


def conda_package(conda_lock_wheel: Path, out: Path, depends: list[str]) -> Path:
    """conda, from the copy conda-lock vendors: its imports renamed back from conda_lock._vendor.conda."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "pkg"
        dest = root / "site-packages" / "conda"
        prefix = "conda_lock/_vendor/conda/"
        with zipfile.ZipFile(conda_lock_wheel) as archive:
            for member in archive.infolist():
                if not member.filename.startswith(prefix) or member.is_dir():
                    continue
                target = dest / member.filename[len(prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                data = archive.read(member)
                if target.suffix == ".py":
                    data = re.sub(rb"conda_lock\.(_)?vendor\.conda\b", b"conda", data)
                target.write_bytes(data)
                target.chmod(0o644)
        # conda 24.7.1 takes logging's lock with logging._acquireLock()/_releaseLock(), which Python 3.13 removed
        # (the channel's python is 3.13; later condas take logging._lock itself, as this does).
        io = dest / "common" / "io.py"
        text = io.read_text()
        patched = text.replace("logging._acquireLock()", "logging._lock.acquire()")
        patched = patched.replace("logging._releaseLock()", "logging._lock.release()")
        if patched == text:
            raise SystemExit("conda's common/io.py no longer calls logging._acquireLock: drop the patch")
        io.write_text(patched)
        version = re.search(r"__version__ = version = '([^']+)'", (dest / "_version.py").read_text())
        if version is None:
            raise SystemExit("conda-lock's vendored conda has no version")
        if b"conda_lock" in b"".join(p.read_bytes() for p in dest.rglob("*.py") if "testing" not in p.parts):
            leftover = [str(p) for p in dest.rglob("*.py") if b"conda_lock." in p.read_bytes()]
            if leftover:
                raise SystemExit(f"conda-lock's names left in the vendored conda: {leftover[:5]}")
        dist_info = root / "site-packages" / f"conda-{version[1]}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: conda\nVersion: {version[1]}\n")
        (dist_info / "INSTALLER").write_text("conda\n")
        link = {
            "noarch": {"type": "python", "entry_points": ["conda = conda.cli.main:main"]},
            "package_metadata_version": 1,
        }
        (root / "info").mkdir()
        (root / "info" / "link.json").write_text(json.dumps(link, indent=2, sort_keys=True) + "\n")
        index = {
            "name": "conda",
            "version": version[1],
            "build": "py_0",
            "build_number": 0,
            "noarch": "python",
            "subdir": "noarch",
            "license": "BSD-3-Clause",
            "depends": sorted({"python >=3.8", *depends}),
        }
        return _package(root, index, out)


# --- channel ------------------------------------------------------------------------------------------------------


def index_channel(channel: Path) -> None:
    import rattler

    for subdir in ("noarch", "linux-64"):
        (channel / subdir).mkdir(parents=True, exist_ok=True)
    asyncio.run(rattler.index.index_fs(channel, write_zst=False, write_shards=False, force=True))
    # One build per package and version: a pin names exactly one file.
    for subdir in ("noarch", "linux-64"):
        repodata = json.loads((channel / subdir / "repodata.json").read_text())
        seen: dict[tuple[str, str], str] = {}
        for filename, record in repodata.get("packages.conda", {}).items():
            key = (record["name"], record["version"])
            if key in seen:
                raise SystemExit(f"two builds of {key[0]} {key[1]} in the channel: {seen[key]}, {filename}")
            seen[key] = filename


# --- installer ----------------------------------------------------------------------------------------------------

RELOCATE = r"""
import os, re, sys
old, new = (a.encode() for a in sys.argv[1:3])
pad = len(old) - len(new)
cstring = re.compile(re.escape(old) + rb"([^\0]*?)\0")
for top, dirs, files in os.walk(new.decode()):
    for name in files:
        path = os.path.join(top, name)
        if os.path.islink(path) or name.endswith(".pyc"):
            continue
        with open(path, "rb") as f:
            data = f.read()
        if old not in data:
            continue
        if b"\0" in data:
            data = cstring.sub(lambda m: new + m.group(1) + b"\0" * pad + b"\0", data)
        else:
            data = data.replace(old, new)
        # A new file renamed over the old one: the running python cannot be written in place.
        with open(path + ".relocating", "wb") as f:
            f.write(data)
        os.chmod(path + ".relocating", os.stat(path).st_mode & 0o7777)
        os.replace(path + ".relocating", path)
"""

HEADER = """#!/bin/bash
# jupyterhub-hpc's conda installer (scripts/build-conda-channel.sh): conda {conda} (as vendored by conda-lock) on
# Python {python} built from Debian's CPython source, for tests and offline sites. Batch mode only, as Miniconda's:
#   bash {name} -b -p PREFIX
# PREFIX must not exist or be empty, and be at most {length} characters long.
set -eu
prefix=""
batch=0
usage() {{ echo "usage: bash $0 -b [-p PREFIX]"; }}
while getopts "bhp:" opt; do
  case $opt in
    b) batch=1 ;;
    p) prefix=$OPTARG ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[ "$batch" = 1 ] || {{ echo "ERROR: only batch mode (-b) is supported" >&2; exit 2; }}
[ -n "$prefix" ] || prefix=$HOME/miniconda3
case $prefix in /*) ;; *) prefix=$PWD/$prefix ;; esac
prefix=${{prefix%/}}
if [ -e "$prefix" ] && [ -n "$(ls -A "$prefix")" ]; then
  echo "ERROR: File or directory already exists: '$prefix'" >&2
  exit 1
fi
old='{staging}'
if [ "${{#prefix}}" -gt "${{#old}}" ]; then
  echo "ERROR: the prefix is longer than ${{#old}} characters: $prefix" >&2
  exit 1
fi
echo "PREFIX=$prefix"
mkdir -p "$prefix"
# Everything below the line after "exit 0": a gzip'ed tar of the base environment, linked at $old.
tail -n +{payload_line} "$0" | tar -xzf - -C "$prefix" --no-same-owner --no-same-permissions
"$prefix/bin/python{minor}" -I -c '{relocate}' "$old" "$prefix"
"$prefix/bin/python{minor}" -I -m compileall -q -j 0 "$prefix/lib/python{minor}/site-packages" >/dev/null || true
echo "installation finished."
exit 0
"""


async def _link_base(channel: Path, specs: list[str], staging: Path, cache: Path) -> list[str]:
    import rattler

    records = await rattler.solve(
        sources=[rattler.Channel(channel.resolve().as_uri())],
        specs=[rattler.MatchSpec(s) for s in specs],
        gateway=rattler.Gateway(cache_dir=cache / "repodata"),
        platforms=["linux-64", "noarch"],
        virtual_packages=[],
    )
    await rattler.install(records, target_prefix=staging, cache_dir=cache / "pkgs", show_progress=False)
    return sorted(f"{r.name.normalized}={r.version}={r.build}" for r in records)


def installer(channel: Path, out: Path, specs: list[str]) -> None:
    """OUT (a batch installer) from the base environment `specs` resolve to in CHANNEL, linked at a staging path."""
    import subprocess

    out = out.resolve()
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        # A fixed staging path (it is written into the installer): the same inputs give the same installer.
        staging = out.parent / "installer-staging" / "base"
        shutil.rmtree(staging.parent, ignore_errors=True)
        staging = Path(str(staging) + "_" * (STAGING_LENGTH - len(str(staging))))
        if len(str(staging)) != STAGING_LENGTH:
            raise SystemExit(f"the staging path is too long: {staging}")
        linked = asyncio.run(_link_base(channel, specs, staging, Path(tmp) / "cache"))
        (staging / "conda-meta" / "history").write_text("")
        # This conda has no conda-libmamba-solver: the classic one (pycosat). A file of its own, so a site's
        # $PREFIX/.condarc (jupyter_env writes one) never drops it.
        (staging / "condarc").write_text(
            "# jupyterhub-hpc's installer: conda-libmamba-solver is not here.\nsolver: classic\n"
        )
        versions = dict(s.split("=")[:2] for s in linked)
        payload = Path(tmp) / "payload.tar.gz"
        subprocess.run(
            ["tar", "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "--format=gnu",
             "--use-compress-program=gzip -n", "-C", str(staging), "-cf", str(payload), "."],
            check=True,
        )  # fmt: skip
        shutil.rmtree(staging.parent)
        fields = {
            "conda": versions["conda"],
            "python": versions["python"],
            "name": out.name,
            "length": STAGING_LENGTH,
            "staging": str(staging),
            "minor": PY_MINOR,
            "relocate": RELOCATE,  # inside single quotes in the header (it holds none)
        }
        text = HEADER.format(payload_line=0, **fields)
        text = HEADER.format(payload_line=text.count("\n") + 1, **fields)
        with out.open("wb") as handle:
            handle.write(text.encode())
            with payload.open("rb") as data:
                shutil.copyfileobj(data, handle)
        out.chmod(0o755)
        print("\n".join(linked))


# --- command line -------------------------------------------------------------------------------------------------


def main(argv: Iterable[str]) -> None:
    args = list(argv)
    command, rest = args[0], args[1:]
    os.umask(0o022)
    if command == "python-package":
        print(python_package(Path(rest[0]), rest[1], rest[2], Path(rest[3])))
    elif command == "wheels":
        placeholder = rest[1]
        for wheel in rest[2:]:
            print(wheel_package(Path(wheel), Path(rest[0]), placeholder))
    elif command == "conda":
        print(conda_package(Path(rest[0]), Path(rest[1]), rest[2:]))
    elif command == "index":
        index_channel(Path(rest[0]))
    elif command == "installer":
        installer(Path(rest[0]), Path(rest[1]), rest[2:])
    else:
        raise SystemExit(f"unknown command {command}; see {__file__}")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
    # py-rattler can abort at interpreter exit after its work is done: leave without running finalizers.
    os._exit(0)
