"""Every Molecule scenario stands alone and names steps that exist; molecule/README.md's matrix lists them all."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MOLECULE = ROOT / "molecule"
SCENARIOS = sorted(p.parent.name for p in MOLECULE.glob("*/molecule.yml"))


def sequence(name: str) -> list[str]:
    data = yaml.safe_load((MOLECULE / name / "molecule.yml").read_text())
    return list(data["scenario"]["test_sequence"])


def test_the_base_config_holds_what_scenarios_share() -> None:
    base = yaml.safe_load((ROOT / ".config/molecule/config.yml").read_text())
    assert {p["name"] for p in base["platforms"]} == {"jhub-mol-hub", "jhub-mol-node1"}
    for name in SCENARIOS:
        own = yaml.safe_load((MOLECULE / name / "molecule.yml").read_text())
        # A scenario that brings its own platforms does so on purpose; the shared ones only carry a sequence.
        if "platforms" not in own:
            assert set(own) == {"scenario"}, name


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_scenario_runs_alone(name: str) -> None:
    steps = sequence(name)
    assert steps[0] == "destroy" and steps[-1] == "destroy"
    assert steps.index("create") < steps.index("prepare") < steps.index("converge")
    for step in steps:
        action, _sep, arg = step.partition(" ")
        if not arg:
            continue
        target = (MOLECULE / name / arg).resolve()
        if action == "verify":
            assert target.is_dir() and list(target.glob("test_*.py")), f"{name}: {step}"
        elif action == "side_effect":
            assert target.is_file(), f"{name}: {step}"
        else:
            pytest.fail(f"{name}: unexpected argument in {step!r}")


def test_every_fault_of_default_runs_in_a_scenario_of_its_own() -> None:
    def targets(name: str) -> set[Path]:
        return {(MOLECULE / name / s.partition(" ")[2]).resolve() for s in sequence(name) if " " in s}

    in_default = targets("default")
    elsewhere = set().union(*(targets(n) for n in SCENARIOS if n != "default"))
    assert in_default - elsewhere == set()


def test_the_matrix_lists_every_scenario() -> None:
    readme = (MOLECULE / "README.md").read_text()
    for name in SCENARIOS:
        assert f"| `{name}` |" in readme, name
