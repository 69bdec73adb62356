"""Unit tests of the resource rules (jupyterhub_hpc.units, cluster_rules and request_rules, and the Ansible filters
over them in filter_plugins/hpc_resources.py), with the exact messages users and operators read."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from jupyterhub_hpc.cluster_rules import fitting_node_types, gpu_choices, validate_cluster
from jupyterhub_hpc.model import Bounds, Cluster, format_slurm_time
from jupyterhub_hpc.request_rules import validate_request
from jupyterhub_hpc.units import ResourceError, parse_memory_mb, parse_walltime_minutes


def cluster() -> dict[str, Any]:
    """A small Fir-like model: CPU nodes, large-memory nodes, GPU nodes with a MIG slice."""
    return {
        "name": "fir",
        "display_name": "Fir",
        "max_walltime": "168h",
        "account_prefixes": ["def-", "rrg-"],
        "node_types": {
            "cpu": {"count": 864, "cores": 192, "memory": 768000},
            "largemem": {"count": 8, "cores": 192, "memory": 6144000},
            "gpu": {
                "count": 160,
                "cores": 48,
                "memory": 1152000,
                "gpus": {
                    "h100": {"per_node": 4, "cores": 12, "memory": "280G"},
                    "h100_1g.10gb": {"per_node": 28, "cores": 1, "memory": "35G", "mig_of": "h100"},
                },
            },
        },
        "form": {
            "time": {"min": 0.5, "default": 1, "max": 24},
            "cores": {"min": 1, "default": 1, "max": 192},
            "memory": {"min": 1000, "default": 4000, "max": 6144000},
            "gpus": {"max": 2, "types": ["h100", "h100_1g.10gb"]},
            "interfaces": ["lab", "notebook", "terminal"],
            "default_interface": "lab",
        },
    }


def model() -> Cluster:
    """``cluster()`` validated: what the hub loads (requests are checked against a model, never raw data)."""
    return validate_cluster(cluster())


def problems_of(func: Any, *args: Any) -> list[str]:
    with pytest.raises(ResourceError) as err:
        func(*args)
    return err.value.problems


# -- units -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "mb"),
    [(4000, 4000), ("4000", 4000), ("4000M", 4000), ("4G", 4096), ("4 GB", 4096), ("1.5G", 1536), ("1T", 1048576)],
)
def test_memory_units(value: Any, mb: int) -> None:
    assert parse_memory_mb(value) == mb


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("lots", "memory: 'lots' is not a memory size (examples: 4000, '4000M', '4G')"),
        (0, "memory: 0 must be more than 0 MB"),
        ("1.5K", "memory: '1.5K' is not a whole number of MB"),
        (True, "memory: True is not a memory size (examples: 4000, '4000M', '4G')"),
    ],
)
def test_memory_errors(value: Any, message: str) -> None:
    assert problems_of(parse_memory_mb, value) == [message]


@pytest.mark.parametrize(
    ("value", "minutes"),
    [
        (1, 60),
        (0.5, 30),
        ("3", 180),
        ("90m", 90),
        ("3h", 180),
        ("7d", 10080),
        ("168h", 10080),
        ("1-12:00:00", 2160),
        ("02:30:00", 150),
        ("10:30", 11),
        ("2-00", 2880),
    ],
)
def test_walltime_units(value: Any, minutes: int) -> None:
    assert parse_walltime_minutes(value) == minutes


def test_walltime_errors() -> None:
    assert problems_of(parse_walltime_minutes, "soon") == [
        "time: 'soon' is not a duration (examples: 3, '90m', '3h', '7d', '1-12:00:00')"
    ]
    assert problems_of(parse_walltime_minutes, -1) == ["time: -1 must be longer than 0 minutes"]
    assert problems_of(parse_walltime_minutes, 0.001) == ["time: 0.001 is not a whole number of minutes"]


@pytest.mark.parametrize(("minutes", "text"), [(30, "00:30:00"), (60, "01:00:00"), (1500, "1-01:00:00")])
def test_slurm_time(minutes: int, text: str) -> None:
    assert format_slurm_time(minutes) == text


# -- the cluster model -------------------------------------------------------------------------------------
def test_valid_cluster_is_normalized() -> None:
    valid = validate_cluster(cluster())
    assert valid.max_walltime_minutes == 10080
    gpu = valid.node_type("gpu").gpu("h100")
    assert gpu is not None and gpu.memory_mb == 286720
    assert valid.form.time == Bounds(min=30, default=60, max=1440)
    assert (valid.form.gpu_types, valid.form.gpu_max) == (("h100", "h100_1g.10gb"), 2)
    assert [n.name for n in valid.node_types] == ["cpu", "gpu", "largemem"]  # sorted: one order for equal models


def broken(path: list[str], value: Any) -> dict[str, Any]:
    model = copy.deepcopy(cluster())
    target = model
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return model


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ["form", "cores", "default"],
            300,
            "hpc_cluster.form.cores.default: 300 is outside [1, 192]",
        ),
        (
            ["form", "cores", "max"],
            256,
            "hpc_cluster.form.cores.max: 256 is above the largest node type's cores (192, node type 'cpu')",
        ),
        (
            ["form", "memory", "max"],
            "8T",
            "hpc_cluster.form.memory.max: 8388608 MB is above the largest node type's memory "
            "(6144000 MB, node type 'largemem')",
        ),
        (
            ["form", "time", "max"],
            "200h",
            "hpc_cluster.form.time.max: '200h' (200 h) is above hpc_cluster.max_walltime (168 h)",
        ),
        (
            ["form", "gpus", "types"],
            ["a100"],
            "hpc_cluster.form.gpus.types[0]: 'a100' is on no node type (known GPU types: h100, h100_1g.10gb)",
        ),
        (
            ["form", "interfaces"],
            ["lab", "vscode"],
            "hpc_cluster.form.interfaces[1]: 'vscode' is not one of lab, notebook, terminal",
        ),
        (
            ["form", "default_interface"],
            "terminal2",
            "hpc_cluster.form.default_interface: 'terminal2' is not in hpc_cluster.form.interfaces",
        ),
        (
            ["node_types", "gpu", "gpus", "h100_1g.10gb", "cores"],
            13,
            "hpc_cluster.node_types.gpu.gpus.h100_1g.10gb.cores: 13 is above the 12 cores recommended for a full "
            "h100 GPU",
        ),
        (
            ["node_types", "gpu", "gpus", "h100_1g.10gb", "mig_of"],
            "a100",
            "hpc_cluster.node_types.gpu.gpus.h100_1g.10gb.mig_of: 'a100' is not a full GPU type of this node type",
        ),
        (
            ["node_types", "cpu", "memory"],
            "much",
            "hpc_cluster.node_types.cpu.memory: 'much' is not a memory size (examples: 4000, '4000M', '4G')",
        ),
        (
            ["account_prefixes"],
            ["def-", "bad prefix"],
            "hpc_cluster.account_prefixes[1]: 'bad prefix' is not an account prefix",
        ),
        (
            ["form", "partition"],
            "cpu; rm -rf /",
            "hpc_cluster.form.partition: 'cpu; rm -rf /' is not a Slurm partition list",
        ),
    ],
)
def test_inconsistent_cluster_names_path_value_and_limit(path: list[str], value: Any, message: str) -> None:
    assert message in problems_of(validate_cluster, broken(path, value))


def test_gpu_count_above_node() -> None:
    model = broken(["form", "gpus", "types"], ["h100"])
    model["form"]["gpus"]["max"] = 5
    assert problems_of(validate_cluster, model) == [
        "hpc_cluster.form.gpus.max: 5 is above the most GPUs of one type on a node (4)"
    ]


def test_a_gpu_count_that_cannot_be_read_is_named_not_crashed_on() -> None:
    # Found by a differential run of broken inventories: the form's gpus.max check took the most of every GPU type's
    # per_node, an unreadable one (None) among them, and the preflight stopped on a TypeError instead of the list.
    for per_node in ("four", None):
        model = broken(["node_types", "gpu", "gpus", "h100", "per_node"], per_node)
        assert problems_of(validate_cluster, model) == [
            f"hpc_cluster.node_types.gpu.gpus.h100.per_node: {per_node!r} is not a whole number"
        ]


def test_gpus_that_cannot_share_a_node() -> None:
    model = broken(["node_types", "gpu", "gpus", "h100", "cores"], 16)
    assert problems_of(validate_cluster, model) == [
        "hpc_cluster.node_types.gpu.gpus.h100: 4 GPUs x 16 recommended cores = 64, above the node type's 48 cores"
    ]


def test_every_problem_is_listed_at_once() -> None:
    model = broken(["form", "cores", "max"], 256)
    model["max_walltime"] = "forever"
    assert problems_of(validate_cluster, model) == [
        "hpc_cluster.max_walltime: 'forever' is not a duration (examples: 3, '90m', '3h', '7d', '1-12:00:00')",
        "hpc_cluster.form.cores.max: 256 is above the largest node type's cores (192, node type 'cpu')",
    ]


def test_default_request_must_fit_a_node() -> None:
    model = cluster()
    model["node_types"] = {"small": {"cores": 2, "memory": 2000}}
    model["form"]["cores"] = {"min": 1, "default": 1, "max": 2}
    model["form"]["memory"] = {"min": 1000, "default": 4000, "max": 4000}
    model["form"]["gpus"] = {}
    problems = problems_of(validate_cluster, model)
    assert (
        "hpc_cluster.form.memory.max: 4000 MB is above the largest node type's memory (2000 MB, node type 'small')"
        in (problems)
    )


def test_custom_variable_path() -> None:
    assert problems_of(validate_cluster, broken(["form", "cores", "max"], 256), "site.cluster")[0].startswith(
        "site.cluster.form.cores.max: 256"
    )


# -- users' requests
CHOICES = "h100:1, h100:2, h100_1g.10gb:1, h100_1g.10gb:2"


def test_defaults_when_nothing_is_chosen() -> None:
    request = validate_request({}, model())
    assert request.to_data() == {
        "account": "",
        "time_minutes": 60,
        "runtime": "01:00:00",
        "cores": 1,
        "nprocs": "1",
        "memory_mb": 4000,
        "memory": "4000M",
        "gpu_type": "",
        "gpu_count": 0,
        "gpus": "",
        "partition": "",
        "interface": "lab",
        "default_url": "/lab",
        "node_types": ["cpu", "gpu", "largemem"],
    }


def test_form_values_as_lists_of_strings() -> None:
    request = validate_request(
        {
            "account": ["def-alice"],
            "time": ["2.5"],
            "cores": ["8"],
            "memory": ["16000"],
            "gpu": ["h100:1"],
            "interface": ["notebook"],
        },
        model(),
        ["def-alice", "rrg-bob"],
    )
    assert (request.runtime, str(request.cores), request.memory, request.gpus, request.account) == (
        "02:30:00",
        "8",
        "16000M",
        "h100:1",
        "def-alice",
    )
    assert request.default_url == "/tree"
    assert request.node_types == ("gpu",)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cores": "193"}, "Cores: 193 is above the maximum of 192"),
        ({"cores": "0"}, "Cores: 0 is below the minimum of 1"),
        ({"cores": "two"}, "Cores: 'two' is not a whole number"),
        ({"time": "25"}, "Time (hours): 25 is above the maximum of 24"),
        ({"time": "0.25"}, "Time (hours): 0.25 is below the minimum of 0.5"),
        ({"memory": "9000000"}, "Memory (MB): 9000000 is above the maximum of 6144000"),
        (
            {"gpu": "a100:1"},
            "GPU: 'a100:1' is not offered (choices: none, " + CHOICES + ")",
        ),
        (
            {"gpu": "h100:1;id"},
            "GPU: 'h100:1;id' is not offered (choices: none, " + CHOICES + ")",
        ),
        ({"interface": "vscode"}, "User interface: 'vscode' is not one of lab, notebook, terminal"),
        ({"account": "abc-x"}, "Account: 'abc-x' does not start with one of def-, rrg-"),
        ({"account": "def-x$(id)"}, "Account: 'def-x$(id)' is not a valid account name"),
        ({"prologue": "rm -rf ~"}, "Unknown option(s): prologue"),
        ({"cores": ["1", "2"]}, "Cores: expected one value, got 2"),
    ],
)
def test_request_errors_name_field_value_and_limit(options: dict[str, Any], message: str) -> None:
    assert problems_of(validate_request, options, model()) == [message]


def test_account_must_be_the_users_own() -> None:
    assert problems_of(validate_request, {"account": "def-bob"}, model(), ["def-alice"]) == [
        "Account: 'def-bob' is not one of your accounts (def-alice)"
    ]
    assert problems_of(validate_request, {}, model(), ["def-alice", "rrg-alice"]) == [
        "Account: choose one of your accounts (def-alice, rrg-alice)"
    ]


def test_cross_field_fit_on_one_node() -> None:
    # Each value is within its own maximum, but no node has 64 cores and an H100 together.
    assert problems_of(validate_request, {"cores": "64", "gpu": "h100:1"}, model()) == [
        "No node of Fir can give 64 cores, 4000 MB and 1 x h100 GPU together (node types: cpu: 192 cores, "
        "768000 MB; gpu: 48 cores, 1152000 MB, 4 x h100, 28 x h100_1g.10gb; largemem: 192 cores, 6144000 MB)"
    ]
    # 1 TB with 192 cores: only the large-memory nodes can.
    assert validate_request({"cores": "192", "memory": "1000000"}, model()).node_types == ("largemem",)


def test_gpu_recommendation_is_enforced() -> None:
    assert problems_of(validate_request, {"gpu": "h100:1", "cores": "24", "memory": "300000"}, model()) == [
        "Cores: 24 is above the 12 recommended for 1 x h100",
        "Memory (MB): 300000 is above the 286720 recommended for 1 x h100",
    ]
    assert validate_request({"gpu": "h100:2", "cores": "24"}, model()).gpus == "h100:2"


def test_several_problems_are_reported_together() -> None:
    assert problems_of(validate_request, {"cores": "500", "time": "48", "interface": "x"}, model()) == [
        "Time (hours): 48 is above the maximum of 24",
        "Cores: 500 is above the maximum of 192",
        "User interface: 'x' is not one of lab, notebook, terminal",
    ]


def test_fitting_node_types_and_gpu_choices() -> None:
    assert fitting_node_types(model(), 48, 1000000, "h100", 4) == ["gpu"]
    assert fitting_node_types(model(), 1, 1000, "h100", 5) == []
    assert [c.value for c in gpu_choices(model())] == ["h100:1", "h100:2", "h100_1g.10gb:1", "h100_1g.10gb:2"]


# -- as Ansible filters ------------------------------------------------------------------------------------
def filter_plugin() -> ModuleType:
    """filter_plugins/hpc_resources.py, loaded from its file as Ansible's plugin loader does."""
    path = Path(__file__).resolve().parents[1] / "filter_plugins" / "hpc_resources.py"
    spec = importlib.util.spec_from_file_location("hpc_resources_filters", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_filters_raise_ansible_filter_error_with_the_same_text() -> None:
    from ansible.errors import AnsibleFilterError

    filters = filter_plugin().FilterModule().filters()
    assert filters["hpc_memory_mb"]("4G") == 4096
    with pytest.raises(AnsibleFilterError) as err:
        filters["hpc_validate_cluster"](broken(["form", "cores", "max"], 256))
    assert err.value.message == (
        "hpc_cluster.form.cores.max: 256 is above the largest node type's cores (192, node type 'cpu')"
    )
    assert sorted(filters) == [
        "hpc_fitting_node_types",
        "hpc_gpu_choices",
        "hpc_memory_mb",
        "hpc_networks",
        "hpc_refused_usernames",
        "hpc_server_proxy_apps",
        "hpc_slurm_time",
        "hpc_username_pattern",
        "hpc_validate_cluster",
        "hpc_validate_request",
        "hpc_walltime_minutes",
    ]
    with pytest.raises(AnsibleFilterError) as err:
        filters["hpc_username_pattern"]("[a-z ]+")
    assert err.value.message.startswith("jupyterhub_username_pattern: '[a-z ]+' accepts the user name 'alice bob'")
    assert filters["hpc_refused_usernames"](["Alice.Smith", "x y"], "[A-Za-z][A-Za-z.]*") == ["x y"]
    assert filters["hpc_refused_usernames"](["jupyterhub", "!x"]) == ["!x"]  # the floor alone


def test_the_filters_are_the_packages_rules() -> None:
    """The plugin holds no rule of its own: each filter answers exactly what the package's function answers."""
    filters = filter_plugin().FilterModule().filters()
    assert filters["hpc_validate_cluster"](cluster()) == model().to_data()
    request = validate_request({"cores": "2"}, model())
    assert filters["hpc_validate_request"]({"cores": "2"}, cluster()) == request.to_data()
    assert filters["hpc_gpu_choices"](cluster()) == [dataclasses.asdict(c) for c in gpu_choices(model())]
    assert filters["hpc_fitting_node_types"](cluster(), 48, 1000000, "h100", 4) == ["gpu"]
    assert filters["hpc_walltime_minutes"]("1-12:00:00") == parse_walltime_minutes("1-12:00:00")
    assert filters["hpc_slurm_time"](90) == format_slurm_time(90)


def test_non_ascii_digits_are_refused_cleanly() -> None:
    # Found by the property tests: '²'.isdigit() is True, but int('²') raises a bare ValueError.
    assert problems_of(validate_request, {"cores": "²"}, model()) == ["Cores: '²' is not a whole number"]
    assert problems_of(parse_memory_mb, "٣G") == ["memory: '٣G' is not a memory size (examples: 4000, '4000M', '4G')"]


def test_control_characters_around_a_number_are_refused_cleanly() -> None:
    # Found by the property tests: '\x1f' is whitespace to str.strip() and a Unicode \s, but int() refuses it.
    assert problems_of(validate_request, {"cores": "0\x1f"}, model()) == ["Cores: '0\\x1f' is not a whole number"]
    # A request's values are exact: no whitespace at all, not even ASCII spaces (the form sends none).
    assert problems_of(validate_request, {"cores": " 2 "}, model()) == ["Cores: ' 2 ' is not a whole number"]


@pytest.mark.parametrize("value", [-0.0, 0, False, 12])
def test_non_string_account_is_refused(value: Any) -> None:
    # Found by the property tests: -0.0 is falsy, and once passed through as the account.
    assert problems_of(validate_request, {"account": value}, model()) == [
        f"Account: {value!r} is not a valid account name"
    ]


def test_invalid_account_is_one_problem_even_with_an_account_list() -> None:
    # A regression caught by the Molecule run: the invalid name also produced "choose one of your accounts".
    assert problems_of(validate_request, {"account": "def-a; id"}, model(), ["def-a", "rrg-b"]) == [
        "Account: 'def-a; id' is not a valid account name"
    ]


# -- hostile requests (found by tests/test_properties.py's hostile-request property) --------------------------
def test_numbers_beyond_a_float_are_refused_by_field_not_crashed_on() -> None:
    # Was OverflowError (an HTTP 500): float(10**400) in the memory and time parsers.
    assert problems_of(validate_request, {"memory": 10**400}, model()) == [
        "Memory (MB): <an integer of 401 digits> is above the maximum of 6144000"
    ]
    assert problems_of(validate_request, {"time": -(10**400)}, model()) == [
        "Time (hours): -<an integer of 401 digits> must be longer than 0 minutes"
    ]
    assert problems_of(validate_request, {"time": "1-" + "9" * 250}, model()) == [
        "Time (hours): 1-99999999999999999999999999999999999... is above the maximum of 24"
    ]
    # Beyond int->str's 4300-digit limit: neither parsing nor the message may call str() on it whole.
    assert problems_of(validate_request, {"cores": "1" * 5000}, model()) == [
        "Cores: '111111111111111111111111111111111111111...' is too long (5000 characters, at most 256)"
    ]
    assert problems_of(validate_request, {"cores": 10**5000}, model()) == [
        "Cores: <an integer of more than 1200 digits> is above the maximum of 192"
    ]
    assert problems_of(parse_walltime_minutes, -(10**400)) == [
        "time: -<an integer of 401 digits> must be longer than 0 minutes"
    ]
    assert problems_of(validate_cluster, broken(["form", "memory", "max"], 10**400)) == [
        "hpc_cluster.form.memory.max: <an integer of 401 digits> MB is above the largest node type's memory "
        "(6144000 MB, node type 'largemem')"
    ]


def test_odd_keys_and_documents_are_refused_cleanly() -> None:
    # Was TypeError: sorted() of keys of mixed types.
    assert problems_of(validate_request, {1: "x", None: 2, "a\nb": 3}, model()) == [
        "Unknown option(s): 'a\\nb', 1, None"
    ]
    assert problems_of(validate_request, {f"k{i}": 1 for i in range(8)}, model()) == [
        "Unknown option(s): k0, k1, k2, k3, k4 (and 3 more)"
    ]
    # Was AttributeError: a JSON list posted as the whole of user_options.
    assert problems_of(validate_request, [{"cores": 1}], model()) == [
        "Server options: expected a JSON object of fields, got <a JSON list>"
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        # Were accepted: float('\u0661\u0662') is 12.0, and the time pattern's \d (without re.ASCII) matched it.
        (
            {"time": "\u0661\u0662"},
            "Time (hours): '\u0661\u0662' is not a duration (examples: 3, '90m', '3h', '7d', '1-12:00:00')",
        ),
        # Was accepted as "no GPU": whitespace counted as an empty field.
        ({"gpu": " "}, "GPU: ' ' is not offered (choices: none, " + CHOICES + ")"),
        ({"gpu": "none\n"}, "GPU: 'none\\n' is not offered (choices: none, " + CHOICES + ")"),
        # Was accepted (with no account list): '$' matches before a final newline, and the account reaches #SBATCH.
        ({"account": "def-alice\n"}, "Account: 'def-alice\\n' is not a valid account name"),
        ({"memory": "4000\n"}, "Memory (MB): '4000\\n' is not a memory size (examples: 4000, '4000M', '4G')"),
        ({"memory": "4 GB"}, "Memory (MB): '4 GB' is not a memory size (examples: 4000, '4000M', '4G')"),
        ({"memory": "4000B"}, "Memory (MB): '4000B' is not a memory size (examples: 4000, '4000M', '4G')"),
        ({"memory": float("inf")}, "Memory (MB): inf is not a finite number"),
        ({"cores": "4\n"}, "Cores: '4\\n' is not a whole number"),
        ({"cores": "1_0"}, "Cores: '1_0' is not a whole number"),
        ({"cores": "+4"}, "Cores: '+4' is not a whole number"),
        ({"cores": "\uff11"}, "Cores: '\uff11' is not a whole number"),
        ({"cores": True}, "Cores: True is not a whole number"),
        ({"cores": 4.0}, "Cores: 4.0 is not a whole number (an integer, not a float)"),
        ({"time": "1e3"}, "Time (hours): '1e3' is not a duration (examples: 3, '90m', '3h', '7d', '1-12:00:00')"),
        ({"time": float("nan")}, "Time (hours): nan is not a finite number"),
        ({"interface": {"lab": 1}}, "User interface: <a JSON object> is not one of lab, notebook, terminal"),
        (
            {"account": "def-" + "a" * 100_000},
            "Account: 'def-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' is too long (100004 characters, at most 256)",
        ),
    ],
)
def test_malformed_values_are_refused_naming_field_value_and_limit(options: dict[str, Any], message: str) -> None:
    assert problems_of(validate_request, options, model()) == [message]


def test_exact_arithmetic() -> None:
    # Was refused: 16.9 * 60 is 1013.9999999999999 in floats, "not a whole number of minutes".
    assert validate_request({"time": "16.9"}, model()).time_minutes == 1014
    assert validate_request({"time": 16.9}, model()).time_minutes == 1014
    assert validate_request({"memory": 4000.0, "cores": "08"}, model()).memory == "4000M"
    assert validate_request({"memory": "4GiB", "time": "1-00"}, model()).runtime == "1-00:00:00"


def test_model_values_that_cannot_reach_slurm_are_refused() -> None:
    # fullmatch, not match: '$' matched before the final newline of a partition or a GPU type name.
    assert "hpc_cluster.form.partition: 'cpu\\n' is not a Slurm partition list" in problems_of(
        validate_cluster, broken(["form", "partition"], "cpu\n")
    )
    gpus = broken(["node_types", "gpu", "gpus", "h100\n"], {"per_node": 1, "cores": 1, "memory": "1G"})
    assert (
        "hpc_cluster.node_types.gpu.gpus: 'h100\\n' is not a valid name (letters, digits, '_', '.', '-')"
        in problems_of(validate_cluster, gpus)
    )
    # The model the hub loads is trusted by validate_request (not validated twice), but what reaches #SBATCH is
    # checked on the way out.
    valid = validate_cluster(cluster())
    hacked = dataclasses.replace(valid, form=dataclasses.replace(valid.form, partition="cpu;id"))
    assert problems_of(validate_request, {}, hacked) == [
        "Partition (hpc_cluster.form.partition): 'cpu;id' cannot be passed to Slurm (it must match [A-Za-z0-9_,-]*)"
    ]
