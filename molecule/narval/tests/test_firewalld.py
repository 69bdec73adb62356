"""Scenario narval with firewalld running on the hub (prepare.yml turns it on before the site's play, as EL hosts
have it): the roles open exactly the proxy's public ports to everyone and the hub's API port to the compute nodes'
networks (jupyterhub_api_allowed_networks: rich rules, role jupyterhub), and nothing else.

* A compute node reaches the hub's API (the users' servers report to it there), and is refused it once the roles'
  rule is taken out of the running firewall (the rule is what lets it in, not an open default).
* A port that listens on the hub but that no role opened is refused to a compute node: the test starts a listener
  on every address of the hub, checks it answers on the hub itself, and connects to it from the compute node."""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Iterator

import pytest
from molhelpers import wait_for
from testinfra.host import Host

HUB = "jhub-mol-hub"  # the hub's name on the scenario network, as the compute nodes reach it
API_PORT = 8081  # jupyterhub_hub_port
PUBLIC_PORTS = {"8000/tcp", "8443/tcp"}  # jupyterhub_proxy_public_port, jupyterhub_proxy_https_port (TLS)
PROBE_PORT = 18099  # nothing of the scenario's listens here, and no role opens it
API_RULE = re.compile(
    rf'^rule family="ipv[46]" source address="([^"]+)" port port="{API_PORT}" protocol="tcp" accept$', re.M
)


def connect(host: Host, address: str, port: int) -> tuple[int, str]:
    """A TCP connection from ``host`` to ``address``:``port`` (5 s at most): its exit status and error text."""
    run = host.run(
        "python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)' "
        f"{address} {port}"
    )
    return run.rc, run.stderr.strip().splitlines()[-1] if run.stderr.strip() else ""


def ipv4(host: Host) -> str:
    """The host's IPv4 address on the scenario network."""
    return next(address for address in host.interface("eth0").addresses if ":" not in address)


@pytest.fixture(scope="module")
def firewalld(hub: Host) -> None:
    # The scenario's prepare enables it: a firewalld that is off here is a failure, never a skip.
    assert hub.service("firewalld").is_enabled, "firewalld is not enabled on the hub (narval/prepare.yml)"
    assert hub.service("firewalld").is_running, "firewalld is enabled on the hub but does not run"
    assert hub.check_output("firewall-cmd --state") == "running"


@pytest.fixture
def probe(hub: Host) -> Iterator[int]:
    """A listener on every address of the hub, on a port no role opens; stopped afterwards."""
    unit = f"jhub-fw-probe-{int(time.time())}"
    started = hub.run(
        f"systemd-run --unit={unit} /usr/bin/python3 -m http.server --bind 0.0.0.0 --directory /usr/share/doc "
        f"{PROBE_PORT}"
    )
    assert started.rc == 0, started.stderr
    try:
        wait_for(lambda: connect(hub, "127.0.0.1", PROBE_PORT)[0] == 0, 30)
        yield PROBE_PORT
    finally:
        hub.run(f"systemctl stop {unit}")


def test_firewalld_holds_the_roles_rules_and_no_other_opening_of_the_api(
    hub: Host, node: Host, firewalld: None
) -> None:
    runtime_ports = set(hub.check_output("firewall-cmd --list-ports").split())
    # Exactly the proxy's ports: the API's port is not open to every source.
    assert runtime_ports == PUBLIC_PORTS
    runtime_rules = hub.check_output("firewall-cmd --list-rich-rules")
    # Permanent and immediate: the saved configuration is the running one.
    assert set(hub.check_output("firewall-cmd --permanent --list-ports").split()) == runtime_ports
    assert sorted(hub.check_output("firewall-cmd --permanent --list-rich-rules").splitlines()) == sorted(
        runtime_rules.splitlines()
    )
    networks = [ipaddress.ip_network(source) for source in API_RULE.findall(runtime_rules)]
    assert networks, runtime_rules
    # The compute node's address is in one of the networks the API is open to.
    node_address = ipaddress.ip_address(ipv4(node))
    assert any(node_address in network for network in networks), (node_address, networks)


def test_a_compute_node_reaches_the_hubs_api(node: Host, firewalld: None) -> None:
    rc, error = connect(node, HUB, API_PORT)
    assert rc == 0, error
    health = node.run(
        'python3 -c "import urllib.request as u; '
        f"print(u.urlopen('http://{HUB}:{API_PORT}/hub/health', timeout=10).status)\""
    )
    assert health.stdout.strip() == "200", health.stderr


def test_the_api_is_refused_to_a_compute_node_without_the_roles_rule(hub: Host, node: Host, firewalld: None) -> None:
    rules = API_RULE.finditer(hub.check_output("firewall-cmd --list-rich-rules"))
    removed = [match.group(0) for match in rules]
    assert removed
    try:
        for rule in removed:  # from the running firewall only; its saved configuration keeps them
            hub.check_output(f"firewall-cmd --remove-rich-rule='{rule}'")
        rc, error = connect(node, HUB, API_PORT)
        assert rc != 0, f"the hub's API port {API_PORT} is open to a compute node without the roles' rule"
        assert re.search(r"no route to host|timed out|refused", error, re.I), error
    finally:
        hub.check_output("firewall-cmd --reload")  # the saved rules, back in the running firewall
    assert connect(node, HUB, API_PORT)[0] == 0


def test_a_port_no_role_opened_is_refused_to_a_compute_node(hub: Host, node: Host, firewalld: None, probe: int) -> None:
    # It listens: on the hub itself, at the hub's own network address too (local traffic, which firewalld lets in).
    assert connect(hub, ipv4(hub), probe)[0] == 0
    rc, error = connect(node, HUB, probe)
    assert rc != 0, f"port {probe} of the hub is open to a compute node"
    # firewalld's default zone rejects (admin-prohibited: "No route to host") or, with a DROP target, times out.
    assert re.search(r"no route to host|timed out|refused", error, re.I), error
