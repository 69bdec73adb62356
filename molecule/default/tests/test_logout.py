"""Log Out ends the job (jupyterhub_shutdown_on_logout, on by default): a user with a running server logs out, her
Slurm job is gone from squeue and the page after logout names it. A logout asked from another user's server (same
site as the hub, so the browser sends the hub's cookies) or with no Referer stops nothing until the user confirms
it with the form (a POST with JupyterHub's XSRF token). The browser test clicks JupyterLab's own Log Out."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import requests
from hubclient import HubClient
from molhelpers import HUB_DOMAIN, squeue_of, wait_for
from testinfra.host import Host


def running_job(alice: HubClient, hub: Host) -> str:
    resp = alice.start_server({"account": "def-alice"})  # an empty body is the form's defaults: no account chosen
    assert resp.status_code in (201, 202), resp.text
    alice.wait_until_ready(timeout=120)
    (line,) = squeue_of(hub, "alice")
    job_id, _user, state, _node = line.split()
    assert state == "RUNNING"
    return job_id


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# What a browser sends when the user opens the page herself (a link, a menu); an <img> sends no-cors/image.
NAVIGATION = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
IMAGE = {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}


def logout(alice: HubClient, referer: str | None, fetch: dict[str, str] | None = None) -> requests.Response:
    fetch = NAVIGATION if fetch is None else fetch  # what a browser sends when the user opens the page herself
    headers = {**fetch, "Referer": referer} if referer else dict(fetch)
    return alice.session.get(alice.url("/hub/logout"), headers=headers, timeout=60)


def test_logout_from_her_jupyterlab_ends_her_job(alice: HubClient, hub: Host) -> None:
    job_id = running_job(alice, hub)
    # JupyterLab's Log Out leaves her server's page for the hub: the Referer is her server's origin.
    resp = logout(alice, origin_of(alice.server_url()))
    assert resp.status_code == 200, resp.text[:500]
    page = text(resp.text)
    assert "You are logged out of Demo cluster." in page, page
    assert f"Your server was stopped: Slurm job {job_id} was cancelled and its resources are free." in page, page
    assert squeue_of(hub, "alice") == []
    assert not alice.user_model()["servers"]  # her API token outlives the logout, her server does not
    # Logged out: the hub's pages ask her to log in.
    home = alice.session.get(alice.url("/hub/home"), allow_redirects=False, timeout=30)
    assert home.status_code == 302 and "/hub/login" in home.headers["Location"]


def test_logout_from_the_hubs_own_page_ends_her_job(alice: HubClient, hub: Host, base_url: str) -> None:
    job_id = running_job(alice, hub)
    resp = logout(alice, f"{base_url}/hub/home")
    assert f"Slurm job {job_id} was cancelled" in text(resp.text)
    assert squeue_of(hub, "alice") == []


def test_logout_asked_by_another_users_page_needs_her_confirmation(alice: HubClient, hub: Host) -> None:
    job_id = running_job(alice, hub)
    asked = [
        (f"https://bob.{HUB_DOMAIN}:8443/", NAVIGATION),  # a link on bob's server
        (None, NAVIGATION),
        # <img src=".../hub/logout"> in a notebook bob gave her, rendered in her own JupyterLab (her origin)
        (origin_of(alice.server_url()), IMAGE),
        # bob's link to the login page with next=/hub/logout: the login forwards, its URL is the Referer
        (alice.url("/hub/login?next=%2Fhub%2Flogout"), NAVIGATION),
    ]
    for referer, fetch in asked:
        resp = logout(alice, referer, fetch)
        assert resp.status_code == 200
        page = text(resp.text)
        assert "Log out of Demo cluster?" in page and f"Your server: Slurm job {job_id}" in page, page
        assert "You are logged out" not in page
        assert [line.split()[0] for line in squeue_of(hub, "alice")] == [job_id]
        assert alice.user_model()["servers"][""]["ready"]

    # A POST without the form's token is refused; with it, she is logged out and her job ends.
    forged = alice.session.post(alice.url("/hub/logout"), data={}, allow_redirects=False, timeout=30)
    assert forged.status_code == 403
    assert [line.split()[0] for line in squeue_of(hub, "alice")] == [job_id]
    token = re.search(r'name="_xsrf" value="([^"]+)"', resp.text)
    assert token, resp.text[:2000]
    done = alice.session.post(alice.url("/hub/logout"), data={"_xsrf": token.group(1)}, timeout=60)
    assert done.status_code == 200
    assert f"Slurm job {job_id} was cancelled" in text(done.text)
    wait_for(lambda: squeue_of(hub, "alice") == [], timeout=10)


def test_logout_can_be_turned_off(hub: Host) -> None:
    """The role's switch reaches the hub (its behaviour with false is JupyterHub's own: servers keep running)."""
    config = json.loads(hub.file("/etc/jupyterhub/jupyterhub_config.d/00-jupyterhub.json").content_string)
    assert config["JupyterHub"]["shutdown_on_logout"] is True
