"""A stand-in for the get-pip.py that ansible-test downloads from Ansible's CI file server to put pip into each empty
virtualenv it makes (scripts/sanity.sh copies it into ansible-test's cache where that server is out of reach and the
package index is not). It does what get-pip.py does, ``pip install --upgrade --force-reinstall <the arguments>`` (the
pinned pip ansible-test asks for, from the package index), with the pip wheel the interpreter itself carries for
ensurepip in place of the one get-pip.py embeds."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def main(args: list[str]) -> int:
    """get-pip.py's command line: pip install's arguments, and --no-setuptools / --no-wheel (otherwise it installs
    them too when they are missing, as get-pip.py does)."""
    spec = importlib.util.find_spec("ensurepip")
    if spec is None or spec.origin is None:
        print("this Python has no ensurepip to take pip from", file=sys.stderr)
        return 1
    wheels = sorted((Path(spec.origin).parent / "_bundled").glob("pip-*.whl"))
    if not wheels:
        print("this Python's ensurepip carries no pip wheel", file=sys.stderr)
        return 1
    sys.path.insert(0, str(wheels[-1]))
    from pip._internal.cli.main import main as pip  # importable from here on only

    packages = [arg for arg in args if arg not in ("--no-setuptools", "--no-wheel")]
    for name in ("setuptools", "wheel"):
        if f"--no-{name}" not in args and importlib.util.find_spec(name) is None:
            packages.append(name)
    status: int = pip(["install", "--upgrade", "--force-reinstall", *packages])
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
