"""The site's settings are merged last, whatever the files are named: the hub's configuration rendered by the roles'
own task files (tests/playbooks/render_hub_config.yml) and loaded as JupyterHub loads it (its application's
load_config_file, which also loads a JSON file of the loader's own name after the loader)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from jupyterhub.app import JupyterHub
from test_inventories import render
from tornado import httpserver
from traitlets.config import Config

# The site's jupyterhub_config: traits the batchspawner role's drop-in sets too (300 s, 3 polls), and a dict trait of
# the jupyterhub role's defaults, of which the site changes one key.
SITE: dict[str, dict[str, Any]] = {
    "Spawner": {"start_timeout": 900},
    "HPCSlurmSpawner": {"unanswered_polls": 7},
    "JupyterHub": {"template_vars": {"announcement": "Maintenance on Monday"}},
}
# A hand-made drop-in whose name sorts after every other (site.json's too): over the roles' settings, under the
# site's.
LATE_DROP_IN: dict[str, dict[str, Any]] = {
    "Spawner": {"start_timeout": 1},
    "HPCSlurmSpawner": {"unanswered_polls": 1},
    "JupyterHub": {"log_level": "DEBUG"},
}


def render_with_site(config_dir: Path) -> str:
    run = render(config_dir, playbook="render_hub_config.yml", jupyterhub_config=SITE)
    assert run.returncode == 0, run.stdout[-3000:]
    return run.stdout


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's hub configuration with the site's settings above, rendered over an earlier version's main file."""
    config_dir = tmp_path_factory.mktemp("etc-jupyterhub")
    # Earlier versions wrote the role's defaults merged with the site's settings here.
    (config_dir / "jupyterhub_config.json").write_text(json.dumps({"Spawner": {"start_timeout": 2}}))
    render_with_site(config_dir)
    (config_dir / "jupyterhub_config.d" / "zz-late.json").write_text(json.dumps(LATE_DROP_IN))
    return config_dir


def load(loader: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The configuration JupyterHub starts with (`jupyterhub --config=<loader>`)."""
    # The loader bounds every tornado HTTPServer of the process (RequestLimits.apply): not this one's after the test.
    monkeypatch.setattr(httpserver.HTTPServer, "_Configurable__impl_kwargs", None, raising=False)
    hub = JupyterHub()
    hub.load_config_file(str(loader))
    config: Config = hub.config
    return config


@pytest.mark.parametrize("loader_name", ["jupyterhub_config.py", "hub.py"])
def test_the_sites_settings_are_merged_last(
    config_dir: Path, loader_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defaults, then drop-ins, then the site's, whatever the loader is called: before, traitlets' own loading of
    jupyterhub_config.json made the site's values win under the unit's file name (putting the role's defaults back
    over every drop-in) and lose to the drop-ins under any other."""
    loader = config_dir / loader_name
    if not loader.exists():
        shutil.copy(config_dir / "jupyterhub_config.py", loader)
    spawner = json.loads((config_dir / "jupyterhub_config.d" / "50-batchspawner.json").read_text())
    assert spawner["Spawner"]["start_timeout"] == 300 and spawner["HPCSlurmSpawner"]["unanswered_polls"] == 3

    config = load(loader, monkeypatch)

    # The site's values, over the batchspawner role's drop-in and over a drop-in named after everything.
    assert config.Spawner.start_timeout == 900
    assert config.HPCSlurmSpawner.unanswered_polls == 7
    # A drop-in over the jupyterhub role's defaults (INFO).
    assert config.JupyterHub.log_level == "DEBUG"
    # The site's key merged into the role's default of the same trait, the rest of it kept.
    template_vars: dict[str, Any] = config.JupyterHub.template_vars
    assert template_vars["announcement"] == "Maintenance on Monday"
    assert template_vars["hpc_cluster_name"] == "Demo cluster"
    # What the site does not set is the roles' own.
    assert config.JupyterHub.spawner_class == "hpc-slurm"
    assert config.SlurmSpawner.batch_submit_cmd == "/usr/bin/sbatch --parsable"
    assert config.RequestLimits.max_body_bytes == 65536


def test_the_site_file_holds_the_sites_traits_only(config_dir: Path) -> None:
    """site.json names only what the site set: a role default there would be merged back over the drop-ins."""
    site = json.loads((config_dir / "site.json").read_text())
    assert {cls: sorted(traits) for cls, traits in site.items()} == {
        cls: sorted(traits) for cls, traits in SITE.items()
    }
    defaults = json.loads((config_dir / "jupyterhub_config.d" / "00-jupyterhub.json").read_text())
    assert defaults["JupyterHub"]["template_vars"]["announcement"] != "Maintenance on Monday"
    assert "Spawner" not in defaults and "HPCSlurmSpawner" not in defaults


def test_no_file_traitlets_loads_by_itself_is_left(config_dir: Path) -> None:
    """The earlier versions' jupyterhub_config.json is removed; a second run changes nothing (idempotent)."""
    assert not (config_dir / "jupyterhub_config.json").exists()
    recap = re.search(r"jhub-demo-hub\s*: ok=\d+\s+changed=(\d+)", render_with_site(config_dir))
    assert recap is not None and recap.group(1) == "0"


def test_the_hub_refuses_to_start_beside_a_json_file_of_its_loaders_name(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """traitlets would merge it after the loader, over the site's settings: the loader stops the hub instead."""
    loader = config_dir / "guarded.py"
    shutil.copy(config_dir / "jupyterhub_config.py", loader)
    (config_dir / "guarded.json").write_text(json.dumps({"Spawner": {"start_timeout": 2}}))
    with pytest.raises(RuntimeError, match=r"guarded\.json would be loaded after guarded\.py and override"):
        load(loader, monkeypatch)
