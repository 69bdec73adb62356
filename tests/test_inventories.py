"""The inventories through Ansible itself: the preflight accepts the reference clusters and refuses broken
copies with the variable named; the rendered spawner configuration matches its golden file."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_hpc_resources import filter_plugin
from test_model import inventory_cluster
from traitlets.config import Config

from jupyterhub_hpc.cluster_rules import validate_cluster
from jupyterhub_hpc.model import Cluster
from jupyterhub_hpc.names import DEFAULT_USERNAME_PATTERN
from jupyterhub_hpc.services import HubServices

ROOT = Path(__file__).resolve().parents[1]
CLUSTERS = ("fir", "narval", "rorqual", "demo")
GOLDEN = Path(__file__).parent / "golden"


def ansible_playbook(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    return subprocess.run(
        # The ansible-playbook installed beside this Python (the controller virtualenv), whatever PATH says.
        [str(Path(sys.executable).parent / "ansible-playbook"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def render(
    render_dir: Path, cluster: str = "demo", playbook: str = "render_spawner_config.yml", **extra: object
) -> subprocess.CompletedProcess[str]:
    """An inventory's hub files, rendered into render_dir by the roles' own task files (tests/playbooks/<playbook>),
    the extra variables over the inventory's."""
    (render_dir / "jupyterhub_config.d").mkdir(exist_ok=True)
    variables = json.dumps({"render_dir": str(render_dir), **extra})
    return ansible_playbook("-i", f"inventories/{cluster}", f"tests/playbooks/{playbook}", "-e", variables)


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_reference_inventories_pass_the_preflight(cluster: str) -> None:
    run = ansible_playbook("-i", f"inventories/{cluster}", "playbooks/preflight.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "failed=0" in run.stdout


def broken_copy(tmp_path: Path, cluster: str, old: str, new: str) -> Path:
    inventory = tmp_path / cluster
    shutil.copytree(ROOT / "inventories" / cluster, inventory, symlinks=False)
    model = inventory / "group_vars" / "all" / "cluster.yml"
    text = model.read_text()
    assert old in text
    model.write_text(text.replace(old, new))
    return inventory


@pytest.mark.parametrize(
    ("cluster", "old", "new", "message"),
    [
        (
            "fir",
            "cores: {min: 1, default: 1, max: 48}",
            "cores: {min: 1, default: 1, max: 256}",
            "hpc_cluster.form.cores.max: 256 is above the largest node type's cores (192, node type 'cpu')",
        ),
        (
            "narval",
            "time: {min: 0.5, default: 1, max: 24}",
            "time: {min: 0.5, default: 1, max: 200}",
            "hpc_cluster.form.time.max: 200 (200 h) is above hpc_cluster.max_walltime (168 h)",
        ),
        (
            "rorqual",
            "h100_1g.10gb: {per_node: 28, cores: 2,",
            "h100_1g.10gb: {per_node: 28, cores: 20,",
            "hpc_cluster.node_types.gpu.gpus.h100_1g.10gb.cores: 20 is above the 16 cores recommended for a full "
            "h100 GPU",
        ),
        (
            "fir",
            "gpus: {max: 1, types: [h100,",
            "gpus: {max: 1, types: [a100, h100,",
            "hpc_cluster.form.gpus.types[0]: 'a100' is on no node type",
        ),
    ],
)
def test_broken_inventory_fails_the_preflight_of_site_yml_in_check_mode(
    tmp_path: Path, cluster: str, old: str, new: str, message: str
) -> None:
    inventory = broken_copy(tmp_path, cluster, old, new)
    run = ansible_playbook("--check", "-i", str(inventory), "site.yml")
    assert run.returncode != 0
    assert f"{inventory}: the cluster model is inconsistent, nothing was deployed" in run.stdout
    assert message in run.stdout
    # It stopped in the preflight: no task ran on the hub.
    assert "PLAY [JupyterHub on Slurm]" not in run.stdout


def test_an_inventory_needs_no_link_into_the_product(tmp_path: Path) -> None:
    """The layout the roles share is in their defaults: an inventory anywhere, with only the site's own files, passes
    (tests/test_collection.py does the same with the installed collection)."""
    assert not [path for path in (ROOT / "inventories").rglob("*") if path.is_symlink()]
    inventory = tmp_path / "fir"
    shutil.copytree(ROOT / "inventories" / "fir", inventory, symlinks=True)
    run = ansible_playbook("-i", str(inventory), "playbooks/preflight.yml")
    assert run.returncode == 0, run.stdout[-3000:]


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_rendered_spawner_configuration_matches_golden_file(tmp_path: Path, cluster: str) -> None:
    run = render(tmp_path, cluster)
    assert run.returncode == 0, run.stdout[-3000:]
    rendered = (tmp_path / "jupyterhub_config.d" / "50-batchspawner.json").read_text()
    golden = GOLDEN / f"{cluster}.batchspawner.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text(), f"rendered differs from {golden} (UPDATE_GOLDEN=1 rewrites it)"


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_the_hub_loads_exactly_the_model_the_preflight_validated(cluster: str) -> None:
    """The golden files are what the role ships (checked above): their model is the filter's output for the inventory,
    and the hub's loader reads it back as the very object the preflight's rules made."""
    shipped = json.loads((GOLDEN / f"{cluster}.batchspawner.json").read_text())["HPCSlurmSpawner"]["cluster"]
    validated = validate_cluster(inventory_cluster(cluster))
    filters = filter_plugin().FilterModule().filters()
    assert shipped == filters["hpc_validate_cluster"](inventory_cluster(cluster)) == validated.to_data()
    assert Cluster.from_data(shipped) == validated


def sudo_words(entry: str) -> list[str]:
    r"""A Cmnd entry's words as sudoers reads them: `\` before one of `,:=\ #` and blanks is dropped (that
    character is then literal), before a glob character (`*?[]!`) kept for the glob."""
    words, word, i = [], "", 0
    while i < len(entry):
        char = entry[i]
        if char == "\\" and i + 1 < len(entry):
            nxt = entry[i + 1]
            word += nxt if nxt in ",:=\\ \t#" else char + nxt
            i += 2
            continue
        if char in " \t":
            if word:
                words.append(word)
            word = ""
        else:
            word += char
        i += 1
    return [*words, word] if word else words


def sudo_glob(pattern: str) -> re.Pattern[str]:
    r"""sudo's argument glob (fnmatch without FNM_PATHNAME): `*` any characters, spaces and `/` included; `?` one;
    `[...]` one of a class (`[!...]` none of it); `\x` the character x."""
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out, i = out + re.escape(pattern[i + 1]), i + 2
        elif char == "*":
            out, i = out + ".*", i + 1
        elif char == "?":
            out, i = out + ".", i + 1
        elif char == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            negate = body[:1] == "!"
            out += "[" + ("^" if negate else "") + body[negate:].replace("\\", "\\\\") + "]"
            i = end + 1
        else:
            out, i = out + re.escape(char), i + 1
    return re.compile(out, re.DOTALL)


def sudo_allows(rule: str, command: str) -> bool:
    """Whether a Cmnd_Alias entry allows the command line (shell words, as the spawner's shell hands them to sudo), as
    sudo matches them: the same command; the arguments joined by single spaces, compared with the entry's as one
    string: by glob when the entry's have a wildcard, else exactly; an entry without arguments allows any, `""` none."""
    command_path, *rule_args = sudo_words(rule)
    argv = shlex.split(command)
    if argv[0] != command_path:
        return False
    if not rule_args:
        return True
    args, wanted = " ".join(argv[1:]), " ".join(rule_args)
    if wanted == '""':
        return args == ""
    if any(char in wanted for char in "*?["):
        return sudo_glob(wanted).fullmatch(args) is not None
    return args == wanted


def sudo_rules(sudoers: str) -> list[str]:
    r"""The entries of the rendered file's Cmnd_Alias (lines ending in `\` go on), split at unescaped commas."""
    text = sudoers.replace("\\\n", " ")
    (alias,) = [line for line in text.splitlines() if line.startswith("Cmnd_Alias ")]
    return [entry.strip() for entry in re.split(r"(?<!\\),", alias.split(" = ", 1)[1])]


def test_the_sudo_rule_matcher_is_sudos() -> None:
    """The matcher of the test below treats wildcards as sudo does: a `*` admits more arguments (why the rules have
    none), a class one character."""
    assert sudo_allows("/usr/bin/scancel [0-9]*", "/usr/bin/scancel 5 --user=bob")
    assert sudo_allows("/usr/bin/scancel [0-9]*", "/usr/bin/scancel 5 6")
    assert not sudo_allows("/usr/bin/scancel [0-9]", "/usr/bin/scancel 5 6")
    assert sudo_allows("/usr/bin/scancel", "/usr/bin/scancel --user=bob")
    assert not sudo_allows('/usr/bin/scancel ""', "/usr/bin/scancel 5")
    assert sudo_allows("/usr/bin/squeue --jobs\\=[0-9] -o %T %B", "/usr/bin/squeue --jobs=5 -o '%T %B'")
    assert sudo_allows("/usr/bin/x a\\*", "/usr/bin/x a*") and not sudo_allows("/usr/bin/x a\\*", "/usr/bin/x ab")
    assert sudo_rules("Cmnd_Alias X = \\\n    /a b\\,c, \\\n    /d\n") == ["/a b\\,c", "/d"]


@pytest.mark.parametrize("cluster", ["demo", "fir"])
def test_the_sudo_rule_allows_exactly_what_the_spawner_runs_as_a_user(tmp_path: Path, cluster: str) -> None:
    """One source: the rule is rendered from the spawner's configuration, character for character; the job id, the
    one argument that varies, is spelled out as digit classes (sudo's `*` would admit any further arguments)."""
    run = render(tmp_path, cluster)
    assert run.returncode == 0, run.stdout[-3000:]
    config = json.loads((tmp_path / "jupyterhub_config.d" / "50-batchspawner.json").read_text())
    rules = sudo_rules((tmp_path / "sudoers").read_text())
    slurm, ours, hub = config["SlurmSpawner"], config["HPCSlurmSpawner"], config["HubServices"]
    digits = ["[0-9]" * n for n in range(1, 11)]  # Slurm job ids are below 2^32: at most 10 digits
    script = "/usr/bin/python3 -I -S /usr/local/libexec/jupyterhub-hpc/job_tail.py"
    tail = f"{script} 4096 .jupyterhub-slurm-%j.log"
    assert rules == [
        "/usr/bin/sbatch --parsable",
        *[f"/usr/bin/squeue -h -j {d} -o %T %B" for d in digits],
        *[f"/usr/bin/scancel {d}" for d in digits],
        *[f"{tail} {d}" for d in digits],
    ]
    assert not [rule for rule in rules if "*" in rule or "?" in rule]

    # What the spawner and the hub's services run after exec_prefix ("sudo -E -u <user>"), with the placeholders
    # filled: each command line is allowed by exactly one entry, whatever the job id's length.
    def as_user(job_id: str) -> list[str]:
        return [
            slurm["batch_submit_cmd"],
            slurm["batch_query_cmd"].format(job_id=job_id),
            hub["cancel_cmd"].format(job_id=job_id),
            ours["output_tail_cmd"].format(
                max_bytes=ours["output_tail_bytes"], job_output=shlex.quote(ours["job_output"]), job_id=job_id
            ),
        ]

    for job_id in ("7", "4242", "4294967295"):
        allowed = [[rule for rule in rules if sudo_allows(rule, command)] for command in as_user(job_id)]
        n = len(job_id)
        assert allowed == [[rules[0]], [rules[n]], [rules[10 + n]], [rules[20 + n]]], job_id

    # Nothing more: another command, more arguments, other arguments.
    for other in (
        "/usr/bin/sbatch --parsable --wrap=id",
        "/usr/bin/scancel --user=bob",
        "/usr/bin/squeue -u bob",
        "/usr/bin/scancel 5 --user=bob",
        "/usr/bin/scancel '5 --user=bob'",
        "/usr/bin/scancel 5 6",
        "/usr/bin/scancel 5,6",
        "/usr/bin/scancel 42949672950",
        "/usr/bin/scancel ''",
        "/usr/bin/squeue -h -j 5 -o '%T %B' --all",
        "/usr/bin/squeue -h -j 5 --all -o '%T %B'",
        "/usr/bin/squeue -h -j 5,6 -o '%T %B'",
        f"{tail} 4242 --extra",
        f"{tail} 4242 4243",
        f"{script} 4096 /home/bob/.jupyterhub-slurm-%j.log 42",
        f"{script} 4096 /home/alice/.jupyterhub-slurm-42.log",
        f"{script} 65536 .jupyterhub-slurm-%j.log 42",
        f"{script} 4096 .jupyterhub-slurm-%u.log 42",
    ):
        assert not [rule for rule in rules if sudo_allows(rule, other)], other


@pytest.mark.parametrize("job_output", ["jupyterhub slurm-%j.log", "../.jupyterhub-slurm-%j.log", "slurm-%x-%j.log"])
def test_a_job_output_the_sudo_rule_cannot_name_is_refused(tmp_path: Path, job_output: str) -> None:
    run = render(tmp_path, batchspawner_job_output=job_output)
    assert run.returncode != 0
    assert f"batchspawner_job_output: {json.dumps(job_output)} cannot be named in the sudo rule" in run.stdout
    assert not (tmp_path / "sudoers").exists()


def test_preflight_refuses_an_oath_users_file_the_hub_cannot_write() -> None:
    run = ansible_playbook(
        "-i", "inventories/demo", "playbooks/preflight.yml", "-e", "jupyterhub_pam_oath_users_file=/etc/users.oath"
    )
    assert run.returncode != 0
    assert "jupyterhub_pam_oath_users_file (/etc/users.oath) must be an absolute path outside /etc" in run.stdout


def test_preflight_refuses_a_compute_network_firewalld_could_not_be_given() -> None:
    networks = {"jupyterhub_api_allowed_networks": ["10.20.0.0/16", "10.30.0.1/16", "compute"]}
    run = ansible_playbook("-i", "inventories/demo", "playbooks/preflight.yml", "-e", json.dumps(networks))
    assert run.returncode != 0
    assert "nothing was deployed" in run.stdout
    assert "jupyterhub_api_allowed_networks[1]: '10.30.0.1/16' has host bits set (the network is 10.30.0.0/16)" in (
        run.stdout
    )
    assert "jupyterhub_api_allowed_networks[2]: 'compute' is not a network in CIDR form" in run.stdout
    accepted = ansible_playbook(
        "-i",
        "inventories/demo",
        "playbooks/preflight.yml",
        "-e",
        json.dumps({"jupyterhub_api_allowed_networks": ["10.20.0.0/16"]}),
    )
    assert accepted.returncode == 0, accepted.stdout[-3000:]


@pytest.mark.parametrize("umask", [18, "022 ; id", "0888"])
def test_preflight_refuses_a_job_umask_the_job_script_cannot_set(umask: object) -> None:
    run = ansible_playbook(
        "-i", "inventories/demo", "playbooks/preflight.yml", "-e", json.dumps({"batchspawner_job_umask": umask})
    )
    assert run.returncode != 0
    assert f"batchspawner_job_umask ({umask}) must be a quoted octal umask" in run.stdout


def test_the_job_script_and_the_spawner_carry_one_job_name(tmp_path: Path) -> None:
    """batchspawner_job_name is the job script's --job-name and the name the spawner searches a user's jobs by."""
    run = render(tmp_path, batchspawner_job_name="hub-test_2.x")
    assert run.returncode == 0, run.stdout[-3000:]
    config = json.loads((tmp_path / "jupyterhub_config.d" / "50-batchspawner.json").read_text())
    names = [line for line in config["SlurmSpawner"]["batch_script"].splitlines() if "--job-name" in line]
    assert names == ["#SBATCH --job-name=hub-test_2.x"]
    assert config["HubServices"]["job_name"] == "hub-test_2.x"
    # ... and the very name the reconciler's search asks squeue for.
    services = HubServices(config=Config(config), job_ledger_file="")
    assert "--name=hub-test_2.x " in services.lost_jobs_cmd


@pytest.mark.parametrize("name", ["jupyter hub", "jupyterhub;id", "hub's", "j" * 65, 42])
def test_preflight_refuses_a_job_name_slurm_and_the_hub_would_not_read_alike(name: object) -> None:
    run = ansible_playbook(
        "-i", "inventories/demo", "playbooks/preflight.yml", "-e", json.dumps({"batchspawner_job_name": name})
    )
    assert run.returncode != 0
    assert f"batchspawner_job_name ({name}) must be a quoted string of 1 to 64 of the characters" in run.stdout


@pytest.mark.parametrize(
    ("extra", "refused"),
    [
        ({"jupyterhub_subdomain_host": ""}, True),
        ({"jupyterhub_subdomain_host": "", "jupyterhub_allow_single_origin": True}, False),
        ({"jupyterhub_subdomain_host": "https://jupyterhub.fir.alliancecan.ca/hub"}, True),
        ({"jupyterhub_subdomain_host": "jupyterhub.fir.alliancecan.ca"}, True),
        ({"jupyterhub_subdomain_host": "http://jupyterhub.fir.alliancecan.ca"}, True),  # TLS on: https
        ({"jupyterhub_subdomain_host": "https://Hub_1.example.org"}, True),
        ({"jupyterhub_subdomain_host": "https://hub.example.org:8443"}, False),
    ],
)
def test_preflight_wants_users_host_names_or_an_accepted_single_origin(extra: dict[str, object], refused: bool) -> None:
    run = ansible_playbook("-i", "inventories/fir", "playbooks/preflight.yml", "-e", json.dumps(extra))
    assert (run.returncode != 0) == refused, run.stdout[-2000:]
    if refused:
        assert f"jupyterhub_subdomain_host: {json.dumps(extra['jupyterhub_subdomain_host'])} must be" in run.stdout
        assert "jupyterhub_allow_single_origin: true" in run.stdout


def test_the_sudo_rule_names_users_as_sites_have_them(tmp_path: Path) -> None:
    """The hub acts as Alice.Smith and alice@example.org (words sudoers reads as user names, as the Molecule scenario
    proves with visudo and sudo itself); the hub's job ledger gets the site's pattern."""
    run = render(tmp_path, batchspawner_sudo_runas_users=["Alice.Smith", "alice@example.org"])
    assert run.returncode == 0, run.stdout[-3000:]
    sudoers = (tmp_path / "sudoers").read_text()
    assert "Runas_Alias JUPYTERHUB_SPAWN_USERS = %hpcusers, Alice.Smith, alice@example.org, !#0\n" in sudoers
    config = json.loads((tmp_path / "jupyterhub_config.d" / "50-batchspawner.json").read_text())
    assert config["HubServices"]["username_pattern"] == DEFAULT_USERNAME_PATTERN
    # ... which the hub's ledger records jobs by.
    ledger = HubServices(config=Config(config), job_ledger_file="").ledger
    ledger.add("7", "Alice.Smith")
    ledger.add("8", "alice@example.org")
    assert ledger.jobs() == {"7": "Alice.Smith", "8": "alice@example.org"}


@pytest.mark.parametrize(
    ("extra", "refused"),
    [
        ({"batchspawner_sudo_runas_users": ["alice", "bob smith"]}, '["bob smith"]'),
        ({"batchspawner_sudo_runas_users": ["ALL"], "jupyterhub_username_pattern": "[a-z]+"}, '["ALL"]'),
        ({"batchspawner_sudo_blocked_users": ["root", "x,ALL"]}, '["x,ALL"]'),
    ],
)
def test_a_user_the_sudo_rule_cannot_name_is_refused(tmp_path: Path, extra: dict[str, object], refused: str) -> None:
    run = render(tmp_path, "demo", "render_spawner_config.yml", **extra)
    assert run.returncode != 0
    assert f"batchspawner_sudo_runas_users, batchspawner_sudo_blocked_users: {refused} cannot be named" in run.stdout
    assert not (tmp_path / "sudoers").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"jupyterhub_username_pattern": "[a-z ]+"}, "jupyterhub_username_pattern: '[a-z ]+' accepts the user name"),
        ({"jupyterhub_username_pattern": "(["}, "jupyterhub_username_pattern: '([' is not a regular expression"),
        ({"jupyterhub_pam_username_pattern": "[a-z]+"}, "jupyterhub_pam_username_pattern is gone"),
        (
            {"jupyterhub_username_pattern": "[a-z]+", "jupyterhub_allowed_users": ["alice", "Alice.Smith"]},
            'jupyterhub_allowed_users, jupyterhub_admin_users: ["Alice.Smith"] do not match',
        ),
    ],
)
def test_preflight_refuses_a_user_name_rule_the_hub_cannot_keep(extra: dict[str, object], message: str) -> None:
    run = ansible_playbook("-i", "inventories/demo", "playbooks/preflight.yml", "-e", json.dumps(extra))
    assert run.returncode != 0
    assert message in " ".join(run.stdout.split()), run.stdout[-2000:]
