"""Unit tests import the filter plugins and the spawner as plain modules, as the hub does."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (
    ROOT / "filter_plugins",
    ROOT / "roles" / "batchspawner" / "files",
    ROOT / "roles" / "jupyterhub_pam" / "files",
    ROOT / "tests",
):
    sys.path.insert(0, str(path))

# CI explores a fixed set of examples (a red build must be reproducible); developers' runs explore new ones.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
