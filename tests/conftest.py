"""Unit tests import the filter plugins and the spawner as plain modules, as the hub does."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT / "filter_plugins", ROOT / "roles" / "batchspawner" / "files", ROOT / "tests"):
    sys.path.insert(0, str(path))
