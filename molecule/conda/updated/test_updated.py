"""After update_pin.yml: the environment moved to tzdata 2026.6 (and nothing else changed), and a user's kernel
imports the new version."""

from __future__ import annotations

from condahelpers import ENV, installed, kernel_output, pins
from testinfra.host import Host


def test_environment_updated_to_the_new_pin(hub: Host) -> None:
    assert installed(hub) == pins("2026.6")


def test_users_kernel_imports_the_new_version(hub: Host, base_url: str) -> None:
    code = "import sys, importlib.metadata as m, tzdata; print(sys.prefix, m.version('tzdata'), tzdata.IANA_VERSION)"
    assert kernel_output(hub, base_url, code).split() == [ENV, "2026.6", "2026f"]
