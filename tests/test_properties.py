"""Property-based tests of the resource rules: what is accepted always fits, and nothing unvalidated passes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from hpc_resources import LABELS, ResourceError, validate_cluster, validate_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]


def load(name: str, wide: bool = False) -> dict[str, Any]:
    """A reference cluster's model; ``wide`` lifts the form's maxima to the largest node, so that requests
    can reach every corner where cores, memory and GPUs no longer fit together."""
    raw = yaml.safe_load((ROOT / "inventories" / name / "group_vars" / "all" / "cluster.yml").read_text())
    model = raw["hpc_cluster"]
    if wide:
        nodes = validate_cluster(model)["node_types"].values()
        model["form"]["cores"]["max"] = max(n["cores"] for n in nodes)
        model["form"]["memory"]["max"] = max(n["memory_mb"] for n in nodes)
        model["form"]["gpus"]["max"] = 4
        model["form"]["enforce_gpu_recommendation"] = False
    return validate_cluster(model)


CLUSTERS = {
    f"{name}{'-wide' if wide else ''}": load(name, wide)
    for name in ("fir", "narval", "rorqual")
    for wide in (False, True)
}

# Values as a browser or an API client might send them: numbers, numeric strings, and arbitrary text.
numbers = st.one_of(
    st.integers(min_value=-10, max_value=10_000_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=0, max_value=400).map(str),
    st.integers(min_value=0, max_value=7_000_000).map(str),
    st.decimals(min_value=0, max_value=300, places=2).map(str),
)
anything = st.one_of(st.text(max_size=40), numbers, st.none(), st.booleans())


def gpu_values(model: dict[str, Any]) -> st.SearchStrategy[Any]:
    offered = [f"{t}:{n}" for t in model["form"]["gpus"]["types"] for n in range(1, 5)]
    return st.one_of(st.sampled_from(["none", "", *offered]), st.text(max_size=30))


def requests(model: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "account": st.one_of(st.sampled_from(["def-alice", "rrg-x", "abc", ""]), st.text(max_size=20)),
            "time": st.one_of(numbers, anything),
            "cores": st.one_of(numbers, anything),
            "memory": st.one_of(numbers, anything),
            "gpu": gpu_values(model),
            "interface": st.one_of(st.sampled_from(["lab", "notebook", "terminal"]), st.text(max_size=10)),
        },
    )


SAFE = {
    "account": r"(|[A-Za-z0-9][A-Za-z0-9_.-]*)",
    "runtime": r"(\d+-)?\d\d:\d\d:00",
    "nprocs": r"[1-9]\d*",
    "memory": r"[1-9]\d*M",
    "gpus": r"(|[A-Za-z0-9][A-Za-z0-9_.-]*:[1-9]\d*)",
    "partition": r"[A-Za-z0-9_,-]*",
    "default_url": r"/(lab|tree|terminals/1)",
}


@pytest.mark.parametrize("name", sorted(CLUSTERS))
def test_every_accepted_request_fits_one_node_type(name: str) -> None:
    model = CLUSTERS[name]

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(requests(model))
    def check(options: dict[str, Any]) -> None:
        try:
            request = validate_request(options, model)
        except ResourceError as err:
            assert err.problems and all(isinstance(p, str) and p for p in err.problems)
            return
        assert request["node_types"], request
        for type_name in request["node_types"]:
            node = model["node_types"][type_name]
            assert request["cores"] <= node["cores"]
            assert request["memory_mb"] <= node["memory_mb"]
            if request["gpu_type"]:
                assert node["gpus"][request["gpu_type"]]["per_node"] >= request["gpu_count"]
        form = model["form"]
        assert form["cores"]["min"] <= request["cores"] <= form["cores"]["max"]
        assert form["memory"]["min"] <= request["memory_mb"] <= form["memory"]["max"]
        assert form["time"]["min"] <= request["time_minutes"] <= form["time"]["max"] <= model["max_walltime_minutes"]

    check()


@pytest.mark.parametrize("name", sorted(CLUSTERS))
def test_arbitrary_strings_never_reach_the_job_script(name: str) -> None:
    """Whatever keys and text a client posts, the values handed to the job script match strict patterns."""
    model = CLUSTERS[name]
    keys = st.one_of(st.sampled_from(sorted(LABELS)), st.text(max_size=12))

    @settings(max_examples=400, deadline=None)
    @given(st.dictionaries(keys, anything, max_size=8))
    def check(options: dict[str, Any]) -> None:
        try:
            request = validate_request(options, model)
        except ResourceError:
            return
        for key, pattern in SAFE.items():
            assert re.fullmatch(pattern, str(request[key])), (key, request[key])

    check()


def render_job_script(request: dict[str, Any]) -> str:
    """The role's job-script template, rendered as Ansible then batchspawner do (two Jinja passes)."""
    source = (ROOT / "roles" / "batchspawner" / "templates" / "batch_script.sh.j2").read_text()
    ansible_env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    ansible_env.filters["quote"] = shlex.quote  # Ansible's filter of that name
    ansible_pass = ansible_env.from_string(source)
    script = ansible_pass.render(
        batchspawner_job_output=".jupyterhub-slurm-%j.log",
        batchspawner_runtime_dir="/tmp/jupyter-${SLURM_JOB_ID}",
        jupyterhub_user_env="/opt/jupyterhub/user",
        batchspawner_job_prologue="",
        batchspawner_job_env_init=["/etc/profile.d/lmod.sh"],
    )
    return (
        jinja2.Environment()
        .from_string(script)
        .render(
            homedir="/home/alice",
            keepvars="PATH,JUPYTERHUB_API_TOKEN",
            srun="/usr/bin/srun --export=ALL",
            cmd="/opt/jupyterhub/user/bin/batchspawner-singleuser /opt/jupyterhub/user/bin/jupyterhub-singleuser",
            **{k: request[k] for k in ("account", "runtime", "nprocs", "memory", "gpus", "partition")},
        )
    )


@settings(max_examples=200, deadline=None)
@given(requests(CLUSTERS["fir"]))
def test_job_script_directives_are_exactly_the_validated_values(options: dict[str, Any]) -> None:
    try:
        request = validate_request(options, CLUSTERS["fir"])
    except ResourceError:
        return
    script = render_job_script(request)
    directives = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    expected = {
        f"#SBATCH --time={request['runtime']}",
        f"#SBATCH --cpus-per-task={request['nprocs']}",
        f"#SBATCH --mem={request['memory']}",
    }
    assert expected <= set(directives)
    if request["gpus"]:
        assert f"#SBATCH --gpus-per-node={request['gpus']}" in directives
    for line in directives:
        assert re.fullmatch(r"#SBATCH --[a-z-]+=[A-Za-z0-9_.:%/,$-]+", line), line
