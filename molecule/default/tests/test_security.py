"""The public side: TLS with a redirect from plain HTTP, APIs listening only where they must, and accounts
that must not log in (expired) told what to check."""

from __future__ import annotations

import re
import socket
import ssl

import pytest
import requests
from hubclient import HubClient
from testinfra.host import Host


def listeners(host: Host) -> dict[int, set[str]]:
    """Listening TCP port -> local addresses, from ss."""
    found: dict[int, set[str]] = {}
    for line in host.check_output("ss -Hltn").splitlines():
        local = line.split()[3]
        address, _sep, port = local.rpartition(":")
        found.setdefault(int(port), set()).add(address.strip("[]"))
    return found


@pytest.mark.parametrize("prefix", ["", "alice."])
def test_proxy_serves_the_hubs_certificate(hub: Host, base_url: str, prefix: str) -> None:
    """For the hub's name and a user's (the certificate names both: NAME and *.NAME), checked as a browser would."""
    host, port = base_url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cadata=hub.file("/etc/ssl/jupyterhub-proxy/cert.pem").content_string)
    with (
        socket.create_connection((prefix + host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=prefix + host) as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        served = tls.getpeercert(binary_form=True)
    on_disk = ssl.PEM_cert_to_DER_cert(hub.file("/etc/ssl/jupyterhub-proxy/cert.pem").content_string)
    assert served == on_disk
    key = hub.file("/etc/ssl/jupyterhub-proxy/key.pem")
    assert (key.user, key.group, key.mode) == ("root", "chp", 0o640)


def test_plain_http_is_redirected_to_https(plain_url: str, base_url: str) -> None:
    resp = requests.get(plain_url + "/hub/login", allow_redirects=False, timeout=10)
    assert resp.status_code == 301
    assert resp.headers["Location"].startswith("https://")
    assert resp.headers["Location"].endswith(":8443/hub/login")
    assert requests.get(base_url + "/hub/health", verify=False, timeout=10).status_code == 200


def test_apis_listen_only_where_they_must(hub: Host, node: Host) -> None:
    ports = listeners(hub)
    assert ports[8443] == {"0.0.0.0"}  # users
    assert ports[8000] <= {"0.0.0.0", "*"}  # users, redirected (CHP's redirect server binds every address)
    assert ports[8001] == {"127.0.0.1"}  # the proxy's API: the hub only
    assert 8081 in ports  # the hub's API: the servers on compute nodes report to it
    node_to_hub = node.run(
        "python3 -c \"import urllib.request as u; print(u.urlopen('http://jhub-mol-hub:8081/hub/health').status)\""
    )
    assert node_to_hub.stdout.strip() == "200"
    node_to_proxy_api = node.run(
        "python3 -c \"import socket; socket.create_connection(('jhub-mol-hub', 8001), timeout=5)\""
    )
    assert node_to_proxy_api.rc != 0 and "refused" in node_to_proxy_api.stderr.lower()


def test_pages_name_the_cluster_and_show_the_announcement(client: HubClient) -> None:
    page = client.session.get(client.url("/hub/login"), timeout=30).content.decode()
    assert "<title>Demo cluster · JupyterHub</title>" in page
    assert 'id="hpc-cluster-name">Demo cluster<' in page
    assert "Demo site: servers run as Slurm jobs" in page
    assert "Log in with your Demo cluster username and password" in page


def test_expired_account_gets_a_page_saying_what_to_check(client: HubClient, hub: Host) -> None:
    assert re.search(r"Account expires\s*: Jan 02, 1970", hub.check_output("chage -l dave"))
    resp = client.login("dave", "dave-demo")
    assert resp.status_code == 403
    assert (
        "Your account or your access to Demo cluster is currently inactive. Please check that: your account is "
        "active (it has been renewed); your access to Demo cluster is enabled."
    ) in resp.content.decode()
    assert not client.logged_in()
    # The same user with a wrong password learns nothing about the account.
    wrong = HubClient(client.base_url, verify=False).login("dave", "not-his-password")
    assert wrong.status_code == 403 and "Invalid username or password" in wrong.text
    assert "inactive" not in wrong.text


def test_locked_account_cannot_log_in(hub: Host, base_url: str) -> None:
    hub.check_output("passwd -l carol")
    try:
        resp = HubClient(base_url, verify=False).login("carol", "carol-demo")
        assert resp.status_code == 403
        assert "Invalid username or password" in resp.text
        assert "check that your account is active" in resp.text  # the login help under the form
    finally:
        hub.check_output("passwd -u carol")
    assert HubClient(base_url, verify=False).login("carol", "carol-demo").status_code == 302
