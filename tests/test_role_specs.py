"""Each role's meta/argument_specs.yml tells the truth about its defaults/main.yml: Ansible uses the defaults file's
values, while the specs are what ansible-doc and the role's validation show a site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

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
