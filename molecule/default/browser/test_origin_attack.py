"""Issue 12's third attack, replayed in Chromium: alice serves a page from her own server (extra_static_paths in her
own ~/.jupyter) and bob, logged in to the hub, opens her link. Its script tries to act as bob: read the hub's XSRF
token from /hub/home and call /hub/api/user with his session, on alice's origin and across to the hub's.

With users' servers on host names of their own (jupyterhub_subdomain_host, the scenario's and the demo's setting)
the page runs in https://alice.jhub.test:8443, where bob's hub cookie is never sent and the hub's answers cannot be
read: the attack gets nothing. The same script run in the hub's own origin (what one origin would give alice's
page) does get bob's account: that control shows the attack is real and the check can fail."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from browser import log_in
from hubclient import HubClient
from molhelpers import HUB_DOMAIN
from playwright.sync_api import Page
from testinfra.host import Host

# What the page's script does, also evaluated as-is in the hub's origin for the control. Every step records what it
# saw; nothing throws.
ATTACK = r"""
async (hub) => {
  const seen = {origin: location.origin};
  async function asBob(base, label) {
    try {
      const home = await fetch(base + "/hub/home", {credentials: "include"});
      const text = await home.text();
      const token = (text.match(/xsrf_token: "([^"]+)"/) || [])[1] || "";
      seen[label + "_home"] = home.status + " " + home.url;
      const api = await fetch(base + "/hub/api/user",
                              {credentials: "include", headers: {"X-XSRFToken": token}});
      seen[label + "_api"] = api.status;
      seen[label + "_name"] = api.ok ? (await api.json()).name : "";
    } catch (err) {
      seen[label + "_error"] = String(err);
    }
  }
  await asBob("", "same_origin");
  await asBob(hub, "hub_origin");
  return seen;
}
"""

PAGE = f"""<!doctype html>
<title>alice's notes</title>
<p>Look at my results!</p>
<script>
({ATTACK})(new URLSearchParams(location.search).get("hub")).then(seen => {{
  document.title = "done";
  document.body.dataset.seen = JSON.stringify(seen);
}});
</script>
"""

SERVER_CONFIG = 'c.ServerApp.extra_static_paths = ["/home/alice/shared-page"]\n'


@pytest.fixture
def alice_serves_a_page(hub: Host, base_url: str) -> Iterator[HubClient]:
    """alice's own files (her config and her page, written as her), and her server running with them."""
    config, page = (base64.b64encode(text.encode()).decode() for text in (SERVER_CONFIG, PAGE))
    script = (
        "set -e; umask 022; mkdir -p ~/.jupyter ~/shared-page; "
        f"echo {config} | base64 -d > ~/.jupyter/jupyter_server_config.py; "
        f"echo {page} | base64 -d > ~/shared-page/x.html"
    )
    hub.run_expect([0], "su -s /bin/bash alice -c %s", script)
    alice = HubClient.fresh(base_url, "alice", "alice-demo", "origin attack", verify=False)
    try:
        assert alice.start_server({"account": "def-alice"}).status_code in (201, 202)
        alice.wait_until_ready(timeout=180)
        yield alice
    finally:
        if alice.user_model().get("servers", {}).get(""):
            alice.stop_server()
        hub.run("su -s /bin/bash alice -c 'rm -rf ~/.jupyter/jupyter_server_config.py ~/shared-page'")


def seen_by(page: Page) -> dict[str, Any]:
    page.wait_for_function("document.title === 'done'", timeout=30_000)
    return dict(json.loads(page.locator("body").get_attribute("data-seen") or "{}"))


def test_a_users_page_cannot_act_as_the_colleague_who_opens_it(
    page: Page, base_url: str, alice_serves_a_page: HubClient
) -> None:
    link = alice_serves_a_page.server_url("/static/x.html")
    assert link.startswith(f"https://alice.{HUB_DOMAIN}:8443/user/alice/"), link  # her server's own host name

    log_in(page, base_url, "bob", "bob-demo")
    page.wait_for_url(f"{base_url}/hub/**")
    page.goto(f"{link}?hub={base_url}")
    seen = seen_by(page)
    print("alice's page, opened by bob:", seen)
    assert seen["origin"] == f"https://alice.{HUB_DOMAIN}:8443"
    # Her origin: bob's hub cookie is not sent there, so the hub never sees bob.
    assert seen.get("same_origin_api") != 200 and seen.get("same_origin_name") != "bob", seen
    # Across to the hub's origin: the browser sends the cookie but the page may not read the answer (no CORS).
    assert "hub_origin_name" not in seen and "TypeError" in seen.get("hub_origin_error", ""), seen

    # Control: the same script in the hub's origin, as a page served there would run (one origin).
    page.goto(f"{base_url}/hub/home")
    control = page.evaluate(ATTACK, base_url)
    print("the same script in the hub's origin:", control)
    assert control["same_origin_api"] == 200 and control["same_origin_name"] == "bob", control
