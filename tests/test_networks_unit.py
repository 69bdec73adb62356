"""The compute nodes' networks (jupyterhub_hpc.networks: the preflight's rule for jupyterhub_api_allowed_networks and
the networks the jupyterhub role's firewalld rules name), with the exact messages operators read."""

from __future__ import annotations

from typing import Any

import pytest
from test_hpc_resources import filter_plugin

from jupyterhub_hpc.networks import check_networks
from jupyterhub_hpc.units import ResourceError

PATH = "jupyterhub_api_allowed_networks"


def problems(value: Any) -> list[str]:
    with pytest.raises(ResourceError) as err:
        check_networks(value, PATH)
    return err.value.problems


def test_networks_are_normalized_in_their_order_without_duplicates() -> None:
    assert check_networks([]) == []
    assert check_networks(["10.20.0.0/16", "2001:DB8:1::/48", "192.0.2.7/32", "10.20.0.0/16"]) == [
        "10.20.0.0/16",
        "2001:db8:1::/48",
        "192.0.2.7/32",
    ]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("compute", "'compute' is not a network in CIDR form (address/prefix, e.g. 10.20.0.0/16 or 2001:db8:1::/48)"),
        (
            "10.20.0.0",
            "'10.20.0.0' is not a network in CIDR form (address/prefix, e.g. 10.20.0.0/16 or 2001:db8:1::/48)",
        ),
        (
            "10.20.0.0/33",
            "'10.20.0.0/33' is not a network in CIDR form (address/prefix, e.g. 10.20.0.0/16 or 2001:db8:1::/48)",
        ),
        ("10.20.0.5/16", "'10.20.0.5/16' has host bits set (the network is 10.20.0.0/16)"),
        (
            "0.0.0.0/0",
            "'0.0.0.0/0' is every address: the hub's API would be open to all; name the compute nodes' networks",
        ),
        ("::/0", "'::/0' is every address: the hub's API would be open to all; name the compute nodes' networks"),
        (16, "16 is not a network in CIDR form (address/prefix, e.g. 10.20.0.0/16 or 2001:db8:1::/48)"),
        (None, "None is not a network in CIDR form (address/prefix, e.g. 10.20.0.0/16 or 2001:db8:1::/48)"),
    ],
)
def test_a_broken_network_is_named_by_its_path(item: Any, message: str) -> None:
    assert problems(["10.30.0.0/16", item]) == [f"{PATH}[1]: {message}"]


def test_every_broken_network_is_listed_and_a_non_list_refused() -> None:
    assert problems(["x", "10.0.0.1/8"]) == [
        f"{PATH}[0]: 'x' is not a network in CIDR form (address/prefix, e.g. 10.20.0.0/16 or 2001:db8:1::/48)",
        f"{PATH}[1]: '10.0.0.1/8' has host bits set (the network is 10.0.0.0/8)",
    ]
    assert problems("10.20.0.0/16") == [
        f"{PATH}: '10.20.0.0/16' is not a list of networks (address/prefix, e.g. 10.20.0.0/16 or 2001:db8:1::/48)"
    ]


def test_the_filter_is_the_rule() -> None:
    from ansible.errors import AnsibleFilterError

    networks = filter_plugin().FilterModule().filters()["hpc_networks"]
    assert networks(["2001:DB8::/32"]) == check_networks(["2001:DB8::/32"]) == ["2001:db8::/32"]
    with pytest.raises(AnsibleFilterError) as err:
        networks(["10.0.0.1/8"], "site_networks")
    assert err.value.message == "site_networks[0]: '10.0.0.1/8' has host bits set (the network is 10.0.0.0/8)"
