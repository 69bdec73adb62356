"""The Server Options form (a pure function of the model, the accounts and the previous request) and the accounts it
offers, without a hub."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from test_spawner_unit import CLUSTER, spawner

from jupyterhub_hpc import form
from jupyterhub_hpc.accounts import offered_accounts
from jupyterhub_hpc.cluster_rules import validate_cluster

MODEL = validate_cluster(CLUSTER)


def fields(html: str) -> list[str]:
    return re.findall(r'name="([a-z]+)"', html)


def test_the_form_offers_the_models_fields_and_limits() -> None:
    html = form.render(MODEL, ["def-alice"], {})
    assert fields(html) == ["account", "time", "cores", "memory", "interface"]  # no GPU on this cluster
    assert 'name="cores" id="cores" min="1" max="4" step="1" value="1" required' in html
    assert 'name="time" id="time" min="0.5" max="8" step="0.5" value="1" required' in html
    assert '<option value="def-alice" selected>def-alice</option>' in html


def test_accounts_slurm_cannot_list_are_typed_with_the_prefixes_as_hint() -> None:
    html = form.render(MODEL, None, {"account": "def-bob"})
    assert '<input class="form-control" name="account" id="account" value="def-bob" placeholder="def-...">' in html
    assert "account" not in fields(form.render(MODEL, [], {}))  # Slurm says: no account at all


def test_the_previous_request_is_shown_again_escaped() -> None:
    previous: dict[str, Any] = {"cores": '2"><script>x</script>', "interface": "terminal"}
    html = form.render(MODEL, ["def-alice"], previous)
    assert "<script>" not in html and 'value="2&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in html
    assert '<option value="terminal" selected>Terminal</option>' in html


def test_only_well_formed_accounts_with_the_clusters_prefixes_are_offered() -> None:
    output = "def-alice\nrrg-alice\n def-alice \ndef-a;b\n\nother\n"
    assert offered_accounts(output, ["def-", "rrg-"]) == ["def-alice", "rrg-alice"]
    assert offered_accounts(output, []) == ["def-alice", "other", "rrg-alice"]


def test_the_spawner_renders_the_form_of_its_model_and_the_users_accounts(tmp_path: Path) -> None:
    s = spawner(tmp_path)  # its sacctmgr answers def-alice
    assert asyncio.run(s.render_form()) == form.render(MODEL, ["def-alice"], {})
