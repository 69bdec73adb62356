"""Each role's meta/argument_specs.yml tells the truth about its defaults/main.yml: Ansible uses the defaults file's
values, while the specs are what ansible-doc and the role's validation show a site. And the spawner's configuration
the batchspawner role writes with its defaults says what the package's traits say by default, but where listed."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from batchspawner import SlurmSpawner
from jupyterhub.app import JupyterHub
from jupyterhub.spawner import Spawner
from test_inventories import render
from traitlets.config import Configurable

ROOT = Path(__file__).resolve().parents[1]
ROLES = sorted(path.parent.parent.name for path in ROOT.glob("roles/*/meta/argument_specs.yml"))


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    assert isinstance(data, dict), f"{path} is not a mapping"
    return data


def options(role: str) -> dict[str, dict[str, Any]]:
    """The options of the role's `main` entry point."""
    specs = load(ROOT / "roles" / role / "meta" / "argument_specs.yml")
    main = specs["argument_specs"]["main"]
    return dict(main.get("options") or {})


def defaults(role: str) -> dict[str, Any]:
    path = ROOT / "roles" / role / "defaults" / "main.yml"
    return load(path) if path.exists() else {}


def test_every_role_has_argument_specs() -> None:
    roles = sorted(path.name for path in (ROOT / "roles").iterdir() if path.is_dir())
    assert roles == ROLES, "a role without meta/argument_specs.yml"


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_declared(role: str) -> None:
    undeclared = sorted(set(defaults(role)) - set(options(role)))
    assert not undeclared, f"{role}: in defaults/main.yml, not in meta/argument_specs.yml: {undeclared}"


@pytest.mark.parametrize("role", ROLES)
def test_declared_defaults_are_the_defaults_files_values(role: str) -> None:
    values = defaults(role)
    wrong = []
    for name, spec in options(role).items():
        if "default" not in spec:
            continue
        if name not in values:
            wrong.append(f"{name}: default {spec['default']!r} in argument_specs, missing from defaults/main.yml")
        # Raw YAML values: a Jinja expression must be the identical string.
        elif spec["default"] != values[name] or type(spec["default"]) is not type(values[name]):
            wrong.append(f"{name}: argument_specs says {spec['default']!r}, defaults/main.yml {values[name]!r}")
    assert not wrong, f"{role}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("role", ROLES)
def test_no_option_is_both_required_and_defaulted(role: str) -> None:
    both = sorted(name for name, spec in options(role).items() if spec.get("required") and "default" in spec)
    assert not both, f"{role}: required with a default in argument_specs: {both}"


# --- The batchspawner role's defaults and the package's traits ---------------------------------------------------

# Where the package's classes a role may configure live: the spawner's module and, once it exists, the hub-wide
# services' (the hub's own Slurm queries and command limits, out of HPCSlurmSpawner).
PACKAGE_MODULES = ("jupyterhub_hpc.spawner", "jupyterhub_hpc.services")
# Classes of other projects the role configures: their traits must exist, their defaults are not the package's.
OTHER_CLASSES: dict[str, type[Configurable]] = {
    "JupyterHub": JupyterHub,
    "Spawner": Spawner,
    "SlurmSpawner": SlurmSpawner,
}
# The role's value differs from the trait's default on purpose.
DIFFERENT_ON_PURPOSE = {
    "HubServices.job_ledger_file": "the trait's is relative to the hub's working directory; the role names the "
    "same file absolutely, in jupyterhub_state_dir (the unit's WorkingDirectory)",
    "HPCSlurmSpawner.output_tail_cmd": "the trait's runs job_tail.py where the package is installed (a path that "
    "changes with the environment's Python); the role's runs its root-owned copy at batchspawner_job_tail, the path "
    "the sudo rule names",
}


def package_classes() -> dict[str, type[Configurable]]:
    """The package's configurable classes, by the name a configuration file gives them."""
    classes: dict[str, type[Configurable]] = {}
    for module_name in PACKAGE_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:  # the module is there and its own import failed
                raise
            continue
        for name, value in vars(module).items():
            if (
                isinstance(value, type)
                and issubclass(value, Configurable)
                and value.__module__.startswith("jupyterhub_hpc.")
            ):
                assert classes.get(name, value) is value, f"two classes named {name} in {PACKAGE_MODULES}"
                classes[name] = value
    return classes


def disagreements(config: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    """What is wrong with a role's configuration against the classes it names, and the keys whose default was
    compared: each class found by name, each key a configurable trait; for the package's classes, the value one the
    trait takes and, where the trait declares a non-empty default, that default (or listed in DIFFERENT_ON_PURPOSE)."""
    ours, problems, compared = package_classes(), [], []
    for cls_name, traits in config.items():
        cls = ours.get(cls_name) or OTHER_CLASSES.get(cls_name)
        if cls is None:
            problems.append(f"{cls_name}: no such class in {PACKAGE_MODULES} nor among {sorted(OTHER_CLASSES)}")
            continue
        for name, value in traits.items():
            key = f"{cls_name}.{name}"
            trait = cls.class_traits(config=True).get(name)
            if trait is None:
                elsewhere = sorted(other for other, found in ours.items() if name in found.class_traits(config=True))
                problems.append(
                    f"{key}: {cls.__module__}.{cls.__qualname__} has no configurable trait {name!r}"
                    + (f" ({', '.join(elsewhere)} {'has' if len(elsewhere) == 1 else 'have'} one)" if elsewhere else "")
                )
                continue
            if cls_name not in ours:
                continue
            cast(Any, trait).validate(None, value)  # a value the trait takes (each kind of trait has its validate)
            # The declared default, not a @default method's (computed from other traits, such as squeue's path).
            default = trait.default()
            if default in ("", None, [], {}):
                continue
            compared.append(key)
            if key in DIFFERENT_ON_PURPOSE:
                if value == default:
                    problems.append(f"{key}: the trait's default now, remove the key from DIFFERENT_ON_PURPOSE")
            elif value != default:
                problems.append(f"{key}: the role writes {value!r}, the package's trait says {default!r}")
    return problems, compared


@pytest.fixture(scope="module")
def spawner_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """50-batchspawner.json as the role writes it with its defaults (the demo inventory sets no batchspawner_*)."""
    assert "batchspawner_" not in "".join(path.read_text() for path in (ROOT / "inventories" / "demo").rglob("*.yml"))
    render_dir = tmp_path_factory.mktemp("render")
    run = render(render_dir)
    assert run.returncode == 0, run.stdout[-3000:]
    config: dict[str, dict[str, Any]] = json.loads(
        (render_dir / "jupyterhub_config.d" / "50-batchspawner.json").read_text()
    )
    return config


def test_the_batchspawner_roles_defaults_are_the_packages(spawner_config: dict[str, dict[str, Any]]) -> None:
    """One default each: a Slurm command's path, a limit, an interval is the package's, which the role repeats."""
    problems, compared = disagreements(spawner_config)
    assert not problems, "\n".join(problems)
    never_compared = sorted(set(DIFFERENT_ON_PURPOSE) - set(compared))
    assert not never_compared, f"in DIFFERENT_ON_PURPOSE, not a key the role writes with a default: {never_compared}"
    # The Slurm commands' defaults, whichever class holds them.
    assert {"squeue", "sacct", "accounts_cmd"} <= {key.split(".")[1] for key in compared}


def test_a_class_or_trait_not_found_and_a_default_out_of_date_are_named() -> None:
    problems, _compared = disagreements(
        {
            "HPCSlurmSpawnr": {"unanswered_polls": 3},
            "SlurmSpawner": {"batch_submit_cmdd": "sbatch"},
            "HPCSlurmSpawner": {"unanswered_polls": 5, "output_tail_bytes": 4096},
        }
    )
    assert problems == [
        f"HPCSlurmSpawnr: no such class in {PACKAGE_MODULES} nor among ['JupyterHub', 'SlurmSpawner', 'Spawner']",
        "SlurmSpawner.batch_submit_cmdd: batchspawner.batchspawner.SlurmSpawner has no configurable trait "
        "'batch_submit_cmdd'",
        "HPCSlurmSpawner.unanswered_polls: the role writes 5, the package's trait says 3",
    ]
