"""The cluster model's one shape: the preflight's validated model, serialized, is loaded by the hub into an equal
object, structurally (schema version, keys, types), without a second validation."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from jupyterhub_hpc.cluster_rules import validate_cluster
from jupyterhub_hpc.model import SCHEMA, Cluster, ModelFormatError

ROOT = Path(__file__).resolve().parents[1]
INVENTORIES = ("fir", "narval", "rorqual", "demo")


def inventory_cluster(name: str) -> dict[str, Any]:
    """The inventory's raw hpc_cluster, from whichever group_vars file holds it."""
    for path in sorted((ROOT / "inventories" / name / "group_vars" / "all").glob("*.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        if "hpc_cluster" in data:
            return dict(data["hpc_cluster"])
    raise AssertionError(f"no hpc_cluster in inventories/{name}")


@pytest.mark.parametrize("name", INVENTORIES)
def test_the_model_round_trips_from_the_preflight_to_the_hub(name: str) -> None:
    model = validate_cluster(inventory_cluster(name))
    shipped = json.loads(json.dumps(model.to_data()))  # through JSON, as in the hub's configuration file
    assert shipped["schema"] == SCHEMA
    loaded = Cluster.from_data(shipped)
    assert loaded == model
    assert loaded.to_json() == model.to_json()
    assert Cluster.from_json(model.to_json()) == model


def test_the_serialized_model_does_not_depend_on_the_inventorys_order() -> None:
    raw = inventory_cluster("fir")
    reordered = copy.deepcopy(raw)
    reordered["node_types"] = dict(reversed(list(raw["node_types"].items())))
    gpu_node = reordered["node_types"]["gpu"]
    gpu_node["gpus"] = dict(reversed(list(gpu_node["gpus"].items())))
    assert validate_cluster(reordered) == validate_cluster(raw)
    assert validate_cluster(reordered).to_json() == validate_cluster(raw).to_json()


def test_the_model_is_frozen() -> None:
    model = validate_cluster(inventory_cluster("demo"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.form.partition = "x;id"  # type: ignore[misc]


def shipped() -> dict[str, Any]:
    return validate_cluster(inventory_cluster("fir")).to_data()


def changed(path: list[str], value: Any, delete: bool = False) -> dict[str, Any]:
    data = shipped()
    target = data
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (changed(["schema"], 2), "cluster.schema: 2, but this package reads schema 1"),
        (changed(["schema"], None, delete=True), "cluster.schema: missing"),
        (changed(["form", "cores", "max"], "48"), "cluster.form.cores.max: expected int, got str"),
        (changed(["form", "cores", "max"], True), "cluster.form.cores.max: expected int, got bool"),
        (changed(["node_types", "gpu", "gpus", "h100", "mig_of"], 1), "cluster.node_types.gpu.gpus.h100.mig_of"),
        (changed(["node_types", "cpu", "memory"], "750G"), "cluster.node_types.cpu: unknown field(s) memory"),
        (changed(["form", "interfaces"], ["lab", 1]), "cluster.form.interfaces: expected a list of strings"),
        (changed(["form"], None), "cluster.form: expected dict, got null"),
        ([shipped()], "cluster: expected an object, got list"),
    ],
)
def test_the_hub_refuses_data_that_is_not_the_schema(data: Any, message: str) -> None:
    with pytest.raises(ModelFormatError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        Cluster.from_data(data)


def test_the_raw_inventory_model_is_not_a_shipped_model() -> None:
    """No guessing which of the two a value is (the old key sniffing): only the schema loads."""
    with pytest.raises(ModelFormatError, match=r"^cluster\.schema: missing"):
        Cluster.from_data(inventory_cluster("fir"))
