"""Fault 2 (proxy_restart.yml): the hub put every route back within its route check interval (30 s)."""

from __future__ import annotations

import json

from hubclient import HubClient
from molhelpers import HUB_DOMAIN, load
from testinfra.host import Host

ROUTE_CHECK_INTERVAL = 30  # jupyterhub_route_check_interval


def test_routes_came_back_after_the_proxy_restart(base_url: str, hub: Host) -> None:
    took = load("proxy_restart")["seconds"]
    print(f"every route back {took} s after the proxy restart (route check every {ROUTE_CHECK_INTERVAL} s)")
    assert took <= ROUTE_CHECK_INTERVAL + 5
    routes = json.loads(
        hub.check_output(
            "set -a; . /etc/configurable-http-proxy/auth.env; "
            'curl -s -H "Authorization: token $CONFIGPROXY_AUTH_TOKEN" http://127.0.0.1:8001/api/routes'
        )
    )
    for name, saved in load("servers")["users"].items():
        assert routes[f"/{name}.{HUB_DOMAIN}/user/{name}"]["user"] == name  # host routing: each user's own name
        client = HubClient(base_url, verify=False, user=name, token=saved["token"])
        assert client.execute("3*3") == "9"
