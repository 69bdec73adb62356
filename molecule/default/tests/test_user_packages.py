"""Users' own packages, from a notebook in a Slurm job on the internal network (no route out): pip installs from the
site's wheelhouse on the shared filesystem (jupyter_env's user_packages: a pip.conf in the environment's prefix, no
index), `--user` or not, and the package imports in the next kernel; a package the wheelhouse lacks fails at once
with pip's own message, without waiting on a network.

jupyterhub-idle-culler is in the wheelhouse (the hub's lock) but not in the users' environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hubclient import HubClient
from molhelpers import server_of, squeue_of
from testinfra.host import Host

PACKAGE = "jupyterhub-idle-culler"
MODULE = "jupyterhub_idle_culler"
WHEELHOUSE = "/opt/jupyterhub/wheelhouse"


def user_site(hub: Host) -> str:
    """alice's user site of the users' environment's Python (the hosts': 3.13 on Debian 13, 3.11 on 12)."""
    python = "/opt/jupyterhub/user/bin/python"
    version = hub.check_output(f"{python} -c 'import sysconfig; print(sysconfig.get_python_version())'")
    return f"/home/alice/.local/lib/python{version}/site-packages"


def forget_package(hub: Host) -> None:
    """alice's ~/.local as before the test (her home is shared with the hub node)."""
    site = user_site(hub)
    hub.run(f"rm -rf {site}/{MODULE} {site}/{MODULE}-*.dist-info /home/alice/.local/bin/{PACKAGE}")


@pytest.fixture(scope="module")
def session(base_url: str, hub: Host) -> Iterator[HubClient]:
    forget_package(hub)
    client = server_of(base_url, "alice", "def-alice")
    yield client
    client.stop_server()
    assert squeue_of(hub, "alice") == []
    forget_package(hub)


def test_pip_is_configured_offline_to_the_users_wheelhouse(hub: Host, node: Host) -> None:
    lines = hub.check_output("/opt/jupyterhub/user/bin/pip config list").splitlines()
    assert sorted(lines) == [
        "global.disable-pip-version-check='true'",
        f"global.find-links='{WHEELHOUSE}'",
        "global.no-index='true'",
    ]
    # The compute node sees the same wheelhouse (shared filesystem), read-only for users.
    assert node.file(WHEELHOUSE).user == "root" and node.file(WHEELHOUSE).mode == 0o755
    # Nothing in it writable by a user, whatever the umask it was built with (pip --user checks no hashes).
    assert node.check_output(f"find {WHEELHOUSE} -perm /022 -o ! -user root") == ""
    assert node.run(f"ls {WHEELHOUSE} | grep -c '^jupyterhub_idle_culler-.*\\.whl$'").stdout.strip() == "1"
    assert not node.run(f"/opt/jupyterhub/user/bin/python -c 'import {MODULE}'").succeeded


def test_pip_install_user_from_a_notebook_installs_from_the_wheelhouse(session: HubClient, hub: Host) -> None:
    out = session.execute(f"%pip install --user {PACKAGE}", timeout=180)
    assert f"Looking in links: {WHEELHOUSE}" in out, out
    assert f"Successfully installed {PACKAGE}-" in out, out
    where = session.execute(f"import {MODULE}; print({MODULE}.__file__)").strip()
    assert where == f"{user_site(hub)}/{MODULE}/__init__.py"
    assert hub.file(f"{user_site(hub)}/{MODULE}").user == "alice"

    # A plain pip install falls back to her ~/.local: the environment itself is read-only. (pip in a virtualenv
    # refuses to uninstall from the user site, "outside environment": the test removes it as she would, by hand.)
    forget_package(hub)
    out = session.execute(f"%pip install {PACKAGE}", timeout=180)
    assert "Defaulting to user installation because normal site-packages is not writeable" in out, out
    assert f"Successfully installed {PACKAGE}-" in out, out


def test_a_package_not_in_the_wheelhouse_fails_at_once(session: HubClient) -> None:
    code = (
        "import subprocess, sys, time\n"
        "began = time.monotonic()\n"
        "r = subprocess.run([sys.executable, '-m', 'pip', 'install', '--user', 'jupyterhub-hpc-no-such-package'],"
        " capture_output=True, text=True, timeout=120)\n"
        "print(r.returncode, round(time.monotonic() - began, 1))\n"
        "print(r.stdout + r.stderr)\n"
    )
    out = session.execute(code, timeout=180)
    first, _sep, rest = out.partition("\n")
    returncode, seconds = first.split()
    print("pip failed in", seconds, "s:", rest.strip()[-300:])
    assert returncode == "1"
    assert "ERROR: No matching distribution found for jupyterhub-hpc-no-such-package" in rest, rest
    assert "Retrying" not in rest and "NewConnectionError" not in rest, rest
    assert float(seconds) < 15
