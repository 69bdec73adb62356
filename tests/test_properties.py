"""Property-based tests of the resource rules: what is accepted always fits, and nothing unvalidated passes."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import jobscript
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyterhub_hpc.cluster_rules import validate_cluster
from jupyterhub_hpc.model import LABELS, Cluster, Request
from jupyterhub_hpc.request_rules import validate_request
from jupyterhub_hpc.units import ResourceError

ROOT = Path(__file__).resolve().parents[1]


def load(name: str, wide: bool = False) -> Cluster:
    """A reference cluster's model; ``wide`` lifts the form's maxima to the largest node, so that requests
    can reach every corner where cores, memory and GPUs no longer fit together."""
    raw = yaml.safe_load((ROOT / "inventories" / name / "group_vars" / "all" / "cluster.yml").read_text())
    model = raw["hpc_cluster"]
    if wide:
        nodes = validate_cluster(model).node_types
        model["form"]["cores"]["max"] = max(n.cores for n in nodes)
        model["form"]["memory"]["max"] = max(n.memory_mb for n in nodes)
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
    data = model.to_data()

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(requests(data))
    def check(options: dict[str, Any]) -> None:
        try:
            request = validate_request(options, model).to_data()
        except ResourceError as err:
            assert err.problems and all(isinstance(p, str) and p for p in err.problems)
            return
        assert request["node_types"], request
        for type_name in request["node_types"]:
            node = data["node_types"][type_name]
            assert request["cores"] <= node["cores"]
            assert request["memory_mb"] <= node["memory_mb"]
            if request["gpu_type"]:
                assert node["gpus"][request["gpu_type"]]["per_node"] >= request["gpu_count"]
        form = data["form"]
        assert form["cores"]["min"] <= request["cores"] <= form["cores"]["max"]
        assert form["memory"]["min"] <= request["memory_mb"] <= form["memory"]["max"]
        assert form["time"]["min"] <= request["time_minutes"] <= form["time"]["max"] <= data["max_walltime_minutes"]

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
            request = validate_request(options, model).to_data()
        except ResourceError:
            return
        for key, pattern in SAFE.items():
            assert re.fullmatch(pattern, str(request[key])), (key, request[key])

    check()


def render_job_script(request: Request) -> str:
    """The job script the spawner submits for ``request`` (tests/jobscript.py)."""
    return jobscript.render_job_script(
        request.job_vars(),
        srun="/usr/bin/srun --export=ALL",
        cmd="/opt/jupyterhub/user/bin/batchspawner-singleuser /opt/jupyterhub/user/bin/jupyterhub-singleuser",
    )


@settings(max_examples=200, deadline=None)
@given(requests(CLUSTERS["fir"].to_data()))
def test_job_script_directives_are_exactly_the_validated_values(options: dict[str, Any]) -> None:
    try:
        request = validate_request(options, CLUSTERS["fir"])
    except ResourceError:
        return
    script = render_job_script(request)
    directives = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    expected = {
        f"#SBATCH --time={request.runtime}",
        f"#SBATCH --cpus-per-task={request.cores}",
        f"#SBATCH --mem={request.memory}",
    }
    assert expected <= set(directives)
    if request.gpus:
        assert f"#SBATCH --gpus-per-node={request.gpus}" in directives
    assert "#SBATCH --no-requeue" in directives  # a server's job is never run twice
    for line in directives:
        assert line == "#SBATCH --no-requeue" or re.fullmatch(r"#SBATCH --[a-z-]+=[A-Za-z0-9_.:%/,$-]+", line), line


# -- hostile input: any JSON value per field, and the exact grammar each field accepts --------------------------
# A hub user can POST any JSON as user_options. validate_request must answer every request with either a normalized
# request or a ResourceError naming the field (HTTP 400), never another exception (HTTP 500), and must accept a
# value only when it is exactly in the field's grammar (documented in validate_request's docstring). The oracle
# below is an independent statement of that grammar, written with exact arithmetic (Fraction).

MAX_TEXT = 256  # longer strings are refused before any parsing
# Arabic-Indic and fullwidth digits, superscripts, underscore: str.isdigit(), int() or float() accept some of them.
BAD_DIGITS = "\u0661\u0662\u0663\u0664\u0660\uff11\uff12\uff10\u00b2\u00b3_"
PADDING = ["", " ", "  ", "\n", "\r\n", "\t", "\x0b", "\x0c", "\x1f", "\x00", "\xa0", "\u2028", "\u3000"]
HUGE_INTS = [10**400, -(10**400), 2**1024, 10**308, 2**63, -1, 0, 10**4000]  # (10**5000: see test_hpc_resources)
ODD_FLOATS = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e308, -1e308, 5e-324, 0.1, 0.5, 1.5, 2.0, 4000.0, 4000.5]
SPECIAL_TEXT = [
    "NaN",
    "nan",
    "Infinity",
    "-inf",
    "inf",
    "+4",
    "-0",
    "-4",
    "1_0",
    "1e3",
    "1E3",
    "0x10",
    "0b1",
    "4.",
    ".5",
    "4,0",
    "\u0664",
    "\u0661\u0662",
    "\uff11",
    "\uff14\uff10\uff10\uff10",
    "\u00b2",
    "4\n",
    " 4",
    "4 ",
    "\n4",
    "4\x00",
    "4000\n",
    "4G\n",
    "4 G",
    "4 GB",
    "4000B",
    "4000iB",
    "4GiB",
    "4gb",
    "1.5K",
    "3h\n",
    "90 m",
    "1-12:00:00\n",
    "1-12:00:00 ",
    "02:30:00",
    "10:30",
    "2-00",
    "1-",
    ":30",
    "1:2:3:4",
    "0-0",
    "00:00:01",
    "def-alice\n",
    "def-alice ",
    " def-alice",
    "def-alice;id",
    "def-$(id)",
    "def-`id`",
    "def-a\rb",
    "lab\n",
    "lab ",
    "LAB",
    "none\n",
    "None",
    "h100:1\n",
    "h100:01",
    "h100:1;id",
    "",
    " ",
    "\n",
    "\t",
]
LONG_TEXT = [
    "1" * 100_000,
    "9" * 5000,
    "9" * (MAX_TEXT + 1),
    "9" * MAX_TEXT,
    "1" + " " * 300,
    "1-" + "9" * 250,
    "9" * 250 + "h",
    "9" * 250 + ":00",
    "9" * 250 + "T",
    "0" * 250 + "1",
    "def-" + "a" * 100_000,
    "def-" + "a" * (MAX_TEXT - 4),
    "def-" + "a" * (MAX_TEXT - 3),
]


@st.composite
def numeric_text(draw: st.DrawFn) -> str:
    """Number-like text: mostly-ASCII digits with odd ones mixed in, signs, fractions, exponents, units,
    Slurm times and whitespace around or inside."""
    digits = st.text(
        st.sampled_from("0123456789" + (BAD_DIGITS if draw(st.booleans()) else "")), min_size=1, max_size=7
    )
    body = draw(
        st.one_of(
            digits,
            st.builds(lambda a, b: f"{a}.{b}", digits, digits),
            st.builds(lambda a, b: f"{a}e{b}", digits, digits),
            st.builds(
                lambda a, u: f"{a}{u}",
                digits,
                st.sampled_from(["K", "M", "G", "T", "g", "GB", "GiB", "iB", "B", "m", "min", "h", "d", "H", "x"]),
            ),
            st.builds(lambda d, h, m, s: f"{d}-{h}:{m}:{s}", digits, digits, digits, digits),
            st.builds(lambda h, m, s: f"{h}:{m}:{s}", digits, digits, digits),
            st.builds(lambda m, s: f"{m}:{s}", digits, digits),
            st.builds(lambda d, h: f"{d}-{h}", digits, digits),
        )
    )
    sign, before, after = (draw(st.sampled_from(choice)) for choice in (["", "", "", "+", "-"], PADDING, PADDING))
    return f"{before}{sign}{body}{after}"


hostile_text = st.one_of(
    st.sampled_from(SPECIAL_TEXT),
    st.sampled_from(LONG_TEXT),
    numeric_text(),
    st.text(max_size=30),  # any code point, control characters included
    st.text(st.characters(categories=["Cc", "Zs", "Zl", "Zp", "Nd", "No", "Pd"]), max_size=8),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(HUGE_INTS),
    st.floats(),
    st.sampled_from(ODD_FLOATS),
    hostile_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def good_values(model: dict[str, Any]) -> dict[str, st.SearchStrategy[Any]]:
    """Values in (or just around) each field's grammar, so that requests are often accepted."""
    form = model["form"]
    cores, memory, minutes = form["cores"], form["memory"], form["time"]
    in_cores = st.integers(cores["min"] - 1, cores["max"] + 1)
    in_memory = st.integers(memory["min"] - 1, memory["max"] + 1)
    in_hours = st.integers(minutes["min"] - 1, minutes["max"] + 1).map(lambda m: m / 60)
    offered = [f"{t}:{n}" for t in form["gpus"]["types"] for n in range(1, 3)]
    return {
        "account": st.sampled_from(["def-alice", "rrg-x", "abc", "", "def-a.b_c-1"]),
        "time": st.one_of(
            in_hours,
            in_hours.map(lambda h: f"{h:g}"),
            st.sampled_from(["1", "0.5", "90m", "2h", "1d", "01:30:00", "45:00", "0-12"]),
        ),
        "cores": st.one_of(in_cores, in_cores.map(str), in_cores.map(lambda n: f"0{n}")),
        "memory": st.one_of(
            in_memory,
            in_memory.map(str),
            in_memory.map(float),
            st.integers(1, 300).map(lambda g: f"{g}G"),
            st.sampled_from(["4000M", "4G", "4GB", "4gib", "1.5G", "1024K", "1T"]),
        ),
        "gpu": st.sampled_from(["none", "", *offered]),
        "interface": st.sampled_from(["lab", "notebook", "terminal", ""]),
    }


def field_values(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    one = st.one_of(good, good, json_values, hostile_text)
    return st.one_of(one, st.lists(one, max_size=2))  # the form sends lists of one string


def hostile_requests(model: dict[str, Any]) -> st.SearchStrategy[dict[Any, Any]]:
    fields = st.fixed_dictionaries({}, optional={key: field_values(good) for key, good in good_values(model).items()})
    extra_keys = st.one_of(
        st.text(max_size=12), st.integers(), st.none(), st.floats(allow_nan=False), st.tuples(st.integers())
    )
    extras = st.dictionaries(extra_keys, json_values, max_size=2)
    return st.builds(lambda f, e: {**e, **f}, fields, st.one_of(st.just({}), extras))


# The grammar, per field (None: refused, naming the field).
def _one(raw: Any) -> tuple[bool, Any]:
    """The form sends a list of one string; (False, _) for any other list."""
    if isinstance(raw, list):
        return (True, raw[0]) if len(raw) == 1 else (False, None)
    return True, raw


def _exact(raw: Any) -> Fraction | None:
    """An int (not bool) or a finite float, exactly (a float as the decimal it prints as)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return Fraction(raw)
    if isinstance(raw, float) and math.isfinite(raw):
        return Fraction(repr(raw))
    return None


def _text(raw: Any, pattern: str) -> re.Match[str] | None:
    if not isinstance(raw, str) or len(raw) > MAX_TEXT:
        return None
    return re.fullmatch(pattern, raw, re.ASCII | re.IGNORECASE)


def _whole_within(amount: Fraction | None, bounds: dict[str, int]) -> int | None:
    if amount is None or amount.denominator != 1 or not bounds["min"] <= amount <= bounds["max"]:
        return None
    return int(amount)


def expect_cores(raw: Any, form: dict[str, Any]) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return _whole_within(Fraction(raw), form["cores"])
    match = _text(raw, r"[0-9]+")
    return _whole_within(Fraction(int(match.group())), form["cores"]) if match else None


def expect_memory_mb(raw: Any, form: dict[str, Any]) -> int | None:
    amount = _exact(raw)
    if amount is None and (match := _text(raw, r"([0-9]+(?:\.[0-9]+)?)(?:([KMGT])(?:i?B)?)?")):
        units = {"K": Fraction(1, 1024), "M": Fraction(1), "G": Fraction(1024), "T": Fraction(1024**2)}
        unit = units[(match.group(2) or "M").upper()]
        amount = Fraction(match.group(1)) * unit
    return _whole_within(amount, form["memory"])


def expect_minutes(raw: Any, form: dict[str, Any]) -> int | None:
    hours = _exact(raw)
    amount = None if hours is None else hours * 60
    if hours is None and (match := _text(raw, r"([0-9]+(?:\.[0-9]+)?)(m|min|h|d)?")):
        unit = {"m": 1, "min": 1, "h": 60, "d": 24 * 60, None: 60}[match.group(2) and match.group(2).lower()]
        amount = Fraction(match.group(1)) * unit
    elif hours is None and (match := _text(raw, r"([0-9]+)-([0-9]+)(?::([0-9]+))?(?::([0-9]+))?")):
        d, h, m, s = (int(g or 0) for g in match.groups())
        amount = Fraction(-(-(((d * 24 + h) * 60 + m) * 60 + s) // 60))
    elif hours is None and (match := _text(raw, r"([0-9]+):([0-9]+)(?::([0-9]+))?")):
        a, b, c = (int(g) if g else None for g in match.groups())
        seconds = (a * 60 + b) * 60 + c if c is not None else a * 60 + b  # type: ignore[operator]
        amount = Fraction(-(-seconds // 60))
    return _whole_within(amount, form["time"])


def expect_account(raw: Any, model: dict[str, Any]) -> str | None:
    if not _text(raw, r"[A-Za-z0-9][A-Za-z0-9_.-]*") or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", raw):
        return None  # (the second match: IGNORECASE alone would not widen this class, but be exact)
    prefixes = model["account_prefixes"]
    return raw if not prefixes or raw.startswith(tuple(prefixes)) else None


def expect_gpu(raw: Any, model: dict[str, Any]) -> tuple[str, int] | None:
    if raw == "none" and isinstance(raw, str):
        return ("", 0)
    offered = {f"{t}:{n}" for t in model["form"]["gpus"]["types"] for n in range(1, model["form"]["gpus"]["max"] + 1)}
    if isinstance(raw, str) and raw in offered:
        gpu_type, count = raw.rsplit(":", 1)
        return (gpu_type, int(count))
    return None


def expect_interface(raw: Any, model: dict[str, Any]) -> str | None:
    return raw if isinstance(raw, str) and raw in model["form"]["interfaces"] else None


def expected_fields(options: dict[Any, Any], model: dict[str, Any]) -> dict[str, Any]:
    """Each present field's expected normalized value, or None when the grammar refuses it."""
    form = model["form"]
    defaults = {
        "account": "",
        "time": form["time"]["default"],
        "cores": form["cores"]["default"],
        "memory": form["memory"]["default"],
        "gpu": ("", 0),
        "interface": form["default_interface"],
    }
    parsers: dict[str, Callable[[Any], Any]] = {
        "account": lambda raw: expect_account(raw, model),
        "time": lambda raw: expect_minutes(raw, form),
        "cores": lambda raw: expect_cores(raw, form),
        "memory": lambda raw: expect_memory_mb(raw, form),
        "gpu": lambda raw: expect_gpu(raw, model),
        "interface": lambda raw: expect_interface(raw, model),
    }
    expected: dict[str, Any] = {}
    for key, parse in parsers.items():
        ok, raw = _one(options.get(key))
        if not ok:
            expected[key] = None
        elif raw is None or (isinstance(raw, str) and raw == ""):
            expected[key] = defaults[key]  # absent or empty: the form's default; whitespace is not empty
        else:
            expected[key] = parse(raw)
    return expected


STRICT = {  # what reaches the job script: ASCII, no whitespace, no shell metacharacter
    "account": r"(|[A-Za-z0-9][A-Za-z0-9_.-]*)",
    "runtime": r"([1-9][0-9]*-)?[0-9][0-9]:[0-5][0-9]:00",
    "nprocs": r"[1-9][0-9]*",
    "memory": r"[1-9][0-9]*M",
    "gpus": r"(|[A-Za-z0-9][A-Za-z0-9_.-]*:[1-9][0-9]*)",
    "partition": r"[A-Za-z0-9_,-]*",
    "default_url": r"/(lab|tree|terminals/1)",
}
CROSS_FIELD = re.compile(
    r"No node of .* together \(node types: .*\)|(Cores|Memory \(MB\)): [0-9]+ is above the [0-9]+ recommended for .*"
)


def check_hostile_request(options: dict[Any, Any], model: Cluster) -> None:
    expected = expected_fields(options, model.to_data())
    unknown = [key for key in options if key not in LABELS]
    try:
        request = validate_request(options, model).to_data()
    except ResourceError as err:  # any other exception fails the test: it would be an HTTP 500
        problems = err.problems
        assert problems and str(err) == "\n".join(problems)
        for problem in problems:
            assert isinstance(problem, str) and problem and "\n" not in problem and "\r" not in problem, problem
            assert len(problem) <= 1000, problem  # values are shown truncated (the limits may be long lists)
            assert problem.startswith((*(f"{label}: " for label in LABELS.values()), "Unknown option(s): ")) or (
                CROSS_FIELD.fullmatch(problem)
            ), problem
        for raw in (*options, *options.values()):  # a long value or key is never repeated whole
            if isinstance(raw, str) and len(raw) > 45:
                assert not any(raw in p or repr(raw) in p for p in problems), problems
        for key, value in expected.items():
            if value is None:  # refused by the grammar: the message names the field
                assert any(p.startswith(f"{LABELS[key]}: ") for p in problems), (key, options.get(key), problems)
        if unknown:
            assert any(p.startswith("Unknown option(s): ") for p in problems), problems
        if not unknown and None not in expected.values():  # every field is well-formed: only cross-field rules
            assert all(CROSS_FIELD.fullmatch(p) for p in problems), (options, problems)
        return
    # Accepted: every field was in its grammar, and the normalized values are exactly the grammar's.
    assert not unknown, unknown
    assert None not in expected.values(), (options, expected, request)
    assert request["account"] == expected["account"]
    assert request["time_minutes"] == expected["time"]
    assert request["cores"] == expected["cores"] and request["nprocs"] == str(expected["cores"])
    assert request["memory_mb"] == expected["memory"] and request["memory"] == f"{expected['memory']}M"
    assert (request["gpu_type"], request["gpu_count"]) == expected["gpu"]
    assert request["interface"] == expected["interface"]
    for key, pattern in STRICT.items():
        assert isinstance(request[key], str) and re.fullmatch(pattern, request[key], re.ASCII), (key, request[key])


@pytest.mark.parametrize("name", sorted(CLUSTERS))
def test_hostile_requests_are_refused_by_field_or_accepted_exactly(name: str) -> None:
    model = CLUSTERS[name]

    @settings(
        max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example]
    )
    @given(hostile_requests(model.to_data()))
    def check(options: dict[Any, Any]) -> None:
        check_hostile_request(options, model)

    check()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_json_document_as_user_options_is_a_clean_answer(options: Any) -> None:
    """The whole body may be any JSON document (a list, a number, ...), not only an object."""
    if isinstance(options, dict):  # (keys and values of any JSON object)
        check_hostile_request(options, CLUSTERS["fir"])
        return
    with pytest.raises(ResourceError) as err:
        validate_request(options, CLUSTERS["fir"])
    assert len(err.value.problems) == 1, err.value.problems
    problem = err.value.problems[0]
    assert problem.startswith("Server options: expected a JSON object") and "\n" not in problem and len(problem) < 100
