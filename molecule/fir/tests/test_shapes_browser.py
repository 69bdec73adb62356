"""Scenarios fir and narval (molecule/narval links this file): a user picks a GPU on the cluster's own form in a
real browser (a MIG slice where the model has them, Narval's; a whole GPU otherwise) and lands in JupyterLab, in a
job on the GPU node type with that GPU."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from browser import expect, log_in, submit_form
from hubclient import HubClient
from molhelpers import gpu_request, host_of, squeue_of
from playwright.sync_api import Page
from testinfra.host import Host


def test_a_gpu_picked_on_the_form_lands_in_jupyterlab_on_its_node(
    page: Page, base_url: str, model: dict[str, Any], hub: Host, shot: Any
) -> None:
    wanted = gpu_request(model, mig=True) or gpu_request(model, mig=False)
    assert wanted, f"{model['name']}'s form offers no GPU"
    node_type, gpu_type, cores, memory = wanted
    HubClient.fresh(base_url, "bob", "bob-demo", "shapes browser clean-up", verify=False)
    log_in(page, base_url, "bob", "bob-demo")
    page.wait_for_url(re.compile(r".*/hub/spawn.*"))
    expect(page.locator(".hpc-cluster")).to_contain_text(model["display_name"])
    # Every GPU type of the form, one each (form.gpus.max of each), after "None".
    offered = page.locator("#gpu option").all_text_contents()
    assert offered[0] == "None" and len(offered) == 1 + len(model["form"]["gpus"]["types"]), offered
    expect(page.locator(f'#gpu option[value="{gpu_type}:1"]')).to_have_text(f"1 x {gpu_type}")
    try:
        submit_form(page, account="def-bob", time="1", cores=str(cores), memory=str(memory), gpu=f"{gpu_type}:1")
        page.wait_for_url(re.compile(r".*/user/bob/lab.*"), timeout=240_000)
        page.locator(".jp-LauncherCard").first.wait_for(timeout=60_000)
        path: Path = shot(f"shape-{model['name']}-gpu-lab")
        print(f"{gpu_type} on {model['name']}: JupyterLab ({path})")
        ((job_id, _user, state, node),) = (line.split() for line in squeue_of(hub, "bob"))
        assert state == "RUNNING" and node == host_of(model, node_type)
        show = hub.check_output(f"scontrol show job {job_id}")
        # Slurm 24.11 spells the GRES as a TRES (gres/gpu:...; 22.05: gres:gpu:...).
        assert re.search(rf"TresPerNode=gres[/:]gpu:{re.escape(gpu_type)}:1\b", show), show
    finally:
        HubClient.fresh(base_url, "bob", "bob-demo", "shapes browser clean-up", verify=False)
