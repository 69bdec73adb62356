"""User names, one rule (``jupyterhub_hpc.names``) for the login, the job ledger and the sudo rule, from the attacker's
side: names as sites have them (capitals, dots, SSSD's ``name@domain``) go through, a name a shell, sudo or Slurm
would read as syntax never does, whatever the site's pattern says; the roles' default is the package's."""

from __future__ import annotations

import asyncio
import inspect
import json
import pwd
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from test_spawner_unit import fake, spawner

from jupyterhub_hpc import names
from jupyterhub_hpc.ledger import JobLedger
from jupyterhub_hpc.names import (
    DEFAULT_USERNAME_PATTERN,
    MAX_USERNAME_CHARS,
    UsernamePatternError,
    check_username_pattern,
    refused_usernames,
    subdomain_hook,
    username_ok,
)
from jupyterhub_hpc.pam import HPCPAMAuthenticator

ROOT = Path(__file__).resolve().parents[1]

# Names sites have: Debian's useradd makes each (molecule's demo_cluster creates the first two), SSSD gives the third.
REAL = [
    "alice",
    "Alice.Smith",
    "alice@example.org",
    "ALICE@AD.EXAMPLE.ORG",
    "first.last@ad.university.example.edu",
    "a_b-c.d",
    "1alice",
    "_svc",
    "x" * MAX_USERNAME_CHARS,
]

# Names no site's rule lets through, whatever its pattern: syntax to a shell, sudo, Slurm or a path, or too long.
SYNTAX = [
    *names.HOSTILE_USERNAMES,
    "x" * (MAX_USERNAME_CHARS + 1),
    "@example.org",
    "alice\r",
    "alice\x7f",
    "alice\u200b",  # zero-width space
    "\uff41lice",  # fullwidth a
    "alice)",
    "alice(",
    "alice<x",
    "alice>x",
    "alice&",
    "alice|id",
    "alice{a,b}",
    "alice[x]",
    "alice^",
    "alice?",
]
# Names the default rule refuses besides: a uid to Slurm (--user=12345) and many tools, a misplaced @.
HOSTILE = [*SYNTAX, "12345", "12345@example.org", "alice@", "alice@@example.org", "alice@example.org@evil"]


@pytest.mark.parametrize("name", REAL)
def test_the_default_rule_takes_the_names_sites_have(name: str) -> None:
    assert username_ok(name)
    assert shlex.quote(name) == name  # one shell word as it is: the command is the same quoted or not


@pytest.mark.parametrize("name", HOSTILE)
def test_the_default_rule_refuses_every_hostile_name(name: str) -> None:
    assert not username_ok(name)
    assert not HPCPAMAuthenticator().valid_username(name)


@pytest.mark.parametrize("name", SYNTAX)
def test_no_pattern_lets_a_hostile_name_through(name: str) -> None:
    """The floor holds whatever the site's pattern says (``.*`` included, which check_username_pattern refuses)."""
    assert not username_ok(name, r"(?s).*")


@given(st.text(max_size=80))
def test_whatever_a_name_every_accepted_one_is_a_plain_word(name: str) -> None:
    """Any string a pattern that accepts everything lets through is at most 64 characters of A-Z a-z 0-9 _ . @ -,
    not starting with - . or @: shlex leaves it alone, sudo and Slurm read it as a name."""
    if username_ok(name, r"(?s).*"):
        assert 0 < len(name) <= MAX_USERNAME_CHARS
        assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.@-]*", name, re.ASCII)
        assert shlex.quote(name) == name and shlex.split(name) == [name]


def test_the_site_pattern_decides_within_the_floor() -> None:
    assert not username_ok("Alice.Smith", "[a-z_][a-z0-9_-]{0,31}")  # the old default: lower case only
    assert username_ok("alice", "[a-z_][a-z0-9_-]{0,31}")
    assert not username_ok("alice", "bob")  # matched entirely
    assert not username_ok(7, DEFAULT_USERNAME_PATTERN)
    with pytest.raises(re.error):
        username_ok("alice", "(")


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("", "is not a regular expression"),
        (7, "is not a regular expression"),
        ("(", "is not a regular expression: missing )"),
        ("[a-z ]+", "accepts the user name 'alice bob'"),
        (r"[a-z_][a-z0-9_.-]{0,31}\$?", "accepts the user name 'alice$'"),  # the ledger's old rule
        (r"\w+", "accepts the user name 'alicé'"),
        (".*", "accepts the user name ''"),
        ("[a-z%]+", "accepts the user name '%alice'"),
    ],
)
def test_a_pattern_that_lets_hostile_names_in_is_refused(pattern: object, why: str) -> None:
    with pytest.raises(UsernamePatternError, match=re.escape(f"jupyterhub_username_pattern: {pattern!r} {why}")):
        check_username_pattern(pattern)


def test_the_default_and_the_old_login_pattern_are_good_patterns() -> None:
    assert check_username_pattern(DEFAULT_USERNAME_PATTERN) == DEFAULT_USERNAME_PATTERN
    assert check_username_pattern("[a-z_][a-z0-9_-]{0,31}") == "[a-z_][a-z0-9_-]{0,31}"


def test_refused_usernames_names_each_refused_one() -> None:
    assert refused_usernames(["alice", "Alice.Smith", "bad name", "-x"]) == ["bad name", "-x"]
    assert refused_usernames(["Alice.Smith"], "[a-z]+") == ["Alice.Smith"]
    assert refused_usernames(["jupyterhub", "12345"], None) == []  # the floor alone (the sudo rule's blocked users)
    assert refused_usernames("alice") == ["'alice'"]


# -- one rule: the roles' default is the package's, used by the login and the ledger --------------------------------
def yaml_file(path: str) -> dict[str, object]:
    data = yaml.safe_load((ROOT / path).read_text())
    assert isinstance(data, dict)
    return data


def test_the_roles_default_is_the_packages() -> None:
    assert yaml_file("roles/jupyterhub/defaults/main.yml")["jupyterhub_username_pattern"] == DEFAULT_USERNAME_PATTERN
    specs = yaml_file("roles/jupyterhub/meta/argument_specs.yml")
    options = specs["argument_specs"]["main"]["options"]  # type: ignore[index]
    assert options["jupyterhub_username_pattern"]["default"] == DEFAULT_USERNAME_PATTERN
    assert HPCPAMAuthenticator.login_username_pattern.default_value == DEFAULT_USERNAME_PATTERN
    signature = inspect.signature(JobLedger)
    assert signature.parameters["username_pattern"].kind is inspect.Parameter.KEYWORD_ONLY
    assert signature.parameters["username_pattern"].default == DEFAULT_USERNAME_PATTERN


def test_the_login_and_the_spawner_get_the_one_variable() -> None:
    """Each role hands the site's one variable on (no pattern of its own, no default of its own)."""
    for role in ("jupyterhub_pam", "batchspawner"):
        defaults = (ROOT / "roles" / role / "defaults" / "main.yml").read_text()
        assert "username_pattern:" not in defaults, role
        specs = yaml_file(f"roles/{role}/meta/argument_specs.yml")
        option = specs["argument_specs"]["main"]["options"]["jupyterhub_username_pattern"]  # type: ignore[index]
        assert option["required"] is True and "default" not in option, role
    pam = (ROOT / "roles/jupyterhub_pam/vars/main.yml").read_text()
    assert 'login_username_pattern: "{{ jupyterhub_username_pattern | hpc_username_pattern(' in pam
    spawner = (ROOT / "roles/batchspawner/vars/main.yml").read_text()
    assert 'username_pattern: "{{ __batchspawner_username_pattern }}"' in spawner
    assert '__batchspawner_username_pattern: "{{ jupyterhub_username_pattern | hpc_username_pattern(' in spawner


@given(st.text(max_size=70))
def test_the_login_and_the_ledger_agree_on_every_name(name: str) -> None:
    ledger = JobLedger("")
    try:
        ledger.add("1", name)
        recorded = True
    except ValueError:
        recorded = False
    assert recorded == HPCPAMAuthenticator().valid_username(name)


# -- the ledger -------------------------------------------------------------------------------------------------
def test_the_ledger_keeps_names_as_sites_have_them_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "jobs.json"
    ledger = JobLedger(str(path))
    ledger.add("7", "Alice.Smith")
    ledger.add("8", "alice@example.org")
    ledger.add_lost("Alice.Smith")
    assert path.stat().st_mode & 0o777 == 0o600
    again = JobLedger(str(path))  # the hub restarted
    assert again.jobs() == {"7": "Alice.Smith", "8": "alice@example.org"}
    assert again.lost() == ["Alice.Smith"]
    again.remove("7")
    again.remove_lost("Alice.Smith")
    assert JobLedger(str(path)).jobs() == {"8": "alice@example.org"}


@pytest.mark.parametrize("name", ["alice; id", "alice bob", "-alice", "alice$(id)", "alice\n", "12345", "x" * 65])
def test_the_ledger_refuses_a_hostile_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / "jobs.json"
    ledger = JobLedger(str(path))
    with pytest.raises(ValueError):
        ledger.add("7", name)
    with pytest.raises(ValueError):
        ledger.add_lost(name)
    assert not path.exists()


def test_a_tampered_ledger_loads_no_hostile_name(tmp_path: Path) -> None:
    path = tmp_path / "jobs.json"
    saved = {
        "jobs": {"7": ["Alice.Smith", 1.0], "8": ["alice; id", 1.0], "9": [["x"], 1.0], "10": ["-u root", 1.0]},
        "lost": {"alice@example.org": 1.0, "bob`id`": 1.0},
    }
    path.write_text(json.dumps(saved))
    ledger = JobLedger(str(path))
    assert ledger.jobs() == {"7": "Alice.Smith"}
    assert ledger.lost() == ["alice@example.org"]


def test_the_ledger_takes_the_sites_pattern(tmp_path: Path) -> None:
    ledger = JobLedger(str(tmp_path / "jobs.json"), username_pattern="[a-z_][a-z0-9_-]{0,31}")
    ledger.add("7", "alice")
    with pytest.raises(ValueError):
        ledger.add("8", "Alice.Smith")
    with pytest.raises(UsernamePatternError, match="username_pattern: '\\[a-z \\]\\+' accepts"):
        JobLedger(str(tmp_path / "jobs.json"), username_pattern="[a-z ]+")


# -- users' host names ------------------------------------------------------------------------------------------
def test_a_name_with_capitals_never_gets_another_users_host() -> None:
    """Host names ignore case: JupyterHub's 'idna' rule would put Alice at Alice.hub (alice.hub, alice's origin)."""
    domain = "hub.example.org"
    hosts = {name: subdomain_hook(name, domain, "user") for name in ["alice", "Alice", "ALICE", "Alice.Smith"]}
    assert hosts["alice"] == "alice.hub.example.org"  # plain names as JupyterHub gives them
    assert len({host.lower() for host in hosts.values()}) == len(hosts)
    for name, host in hosts.items():
        label, rest = host.split(".", 1)
        assert rest == domain and host == host.lower(), name
        assert re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", label), name
    for name in ["alice@example.org", "Alice.Smith", "a.b"]:  # one label each: never under another user's host
        assert subdomain_hook(name, domain, "user").count(".") == domain.count(".") + 1, name
    assert subdomain_hook("culler", domain, "service") == "culler--service.hub.example.org"  # services: JupyterHub's


# -- the spawner as it is: its exec prefix and its ledger with such names ---------------------------------------
@pytest.mark.parametrize("name", ["Alice.Smith", "alice@example.org"])
def test_the_spawner_submits_as_the_account_and_records_its_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The submission runs ``<exec_prefix> <sbatch>`` through /bin/sh with the name as the hub's services fill it
    (shell-quoted, which leaves such a name as it is): the stand-in sudo receives the name as one word, exactly, and
    the job is recorded under it."""
    real = pwd.getpwnam
    account = SimpleNamespace(pw_dir=str(tmp_path), pw_shell="/bin/sh")  # the account as NSS would give it
    monkeypatch.setattr(pwd, "getpwnam", lambda n: account if n == name else real(n))
    calls = tmp_path / "sudo-calls"
    sudo = fake(tmp_path, "sudo", f'printf "%s\\n" "$@" >{calls}; shift 3; exec "$@"')
    sbatch = fake(tmp_path, "sbatch", "cat >/dev/null; echo 7")
    s = spawner(tmp_path, batch_submit_cmd=sbatch, exec_prefix=f"{sudo} -E -u {{username}}")
    s.user = SimpleNamespace(name=name, url=f"/user/{name}/", escaped_name=name, id=1)
    s.req_username = name

    async def submit() -> str:
        await s.apply_options({"account": "def-alice"})
        return await s.submit_batch_script()

    assert asyncio.run(submit()) == "7"
    assert calls.read_text().splitlines() == ["-E", "-u", name, sbatch]
    assert JobLedger(str(tmp_path / "jobs.json")).jobs() == {"7": name}
