"""The hub's guards around JupyterHub's handlers, from the attacker's side: a request for the hub at a user's host
(hosts.py), a large request body (limits.py), a start its user stopped and a stop during the hub's check
(pending.py). The Molecule scenario replays each against the real hub
(molecule/default/tests/test_attacks_round3.py)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest
from tornado import httpserver, netutil, web

from jupyterhub_hpc import hosts, pending
from jupyterhub_hpc.limits import RequestLimits

HUB = "https://hub.example.org:8443"


class FakeHandler:
    """What hosts.answer_on_user_host uses of a tornado handler, recording what it answers."""

    def __init__(self, host: str, method: str = "GET", uri: str = "/hub/login?next=%2Fuser%2Falice%2F") -> None:
        self.settings = {"subdomain_host": HUB, "domain": "hub.example.org"}
        self.request = SimpleNamespace(host=host, method=method, uri=uri)
        self.status = 200
        self.redirected = ""
        self.body = ""

    def clear(self) -> None:
        pass

    def redirect(self, url: str, permanent: bool = False) -> None:
        self.status, self.redirected = 302, url

    def set_status(self, status: int) -> None:
        self.status = status

    def set_header(self, name: str, value: str) -> None:
        pass

    def finish(self, body: str) -> None:
        self.body = body


@pytest.mark.parametrize(
    "host",
    ["alice.hub.example.org:8443", "ALICE.Hub.Example.Org", "alice.hub.example.org.", "x.y.hub.example.org:1"],
)
def test_the_hub_is_never_served_at_a_users_host(host: str) -> None:
    page = FakeHandler(host)
    assert hosts.answer_on_user_host(page)
    assert page.status == 302 and page.redirected == HUB + "/hub/login?next=%2Fuser%2Falice%2F"
    token = FakeHandler(host, method="POST", uri="/hub/api/users/bob/tokens")
    assert hosts.answer_on_user_host(token)
    assert token.status == 403 and not token.redirected


@pytest.mark.parametrize(
    "host", ["hub.example.org:8443", "hub.example.org", "jhub-mol-hub:8081", "127.0.0.1:8081", "evilhub.example.org"]
)
def test_the_hubs_own_host_and_its_internal_names_are_served(host: str) -> None:
    handler = FakeHandler(host, method="POST")
    assert not hosts.answer_on_user_host(handler)
    assert handler.status == 200


def test_without_user_hosts_nothing_is_answered() -> None:
    handler = FakeHandler("alice.hub.example.org")
    handler.settings = {"subdomain_host": "", "domain": ""}
    assert not hosts.answer_on_user_host(handler)


class Echo(web.RequestHandler):
    def post(self) -> None:
        self.write(str(len(self.request.body)))


def test_a_body_beyond_the_limit_is_refused_before_any_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    """A large body is refused as soon as its length is known: the handler never runs, nothing parses it."""
    monkeypatch.setattr(httpserver.HTTPServer, "_Configurable__impl_kwargs", None, raising=False)
    RequestLimits(max_body_bytes=4096).apply()
    handled: list[int] = []

    class Echo(web.RequestHandler):
        def post(self) -> None:
            handled.append(len(self.request.body))
            self.write(str(len(self.request.body)))

    async def post(port: int, length: int, sent: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST / HTTP/1.1\r\nHost: hub\r\nContent-Length: %d\r\n\r\n" % length + sent)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(4096), 5)
        writer.close()
        return answer

    async def attack() -> tuple[bytes, bytes]:
        sockets = netutil.bind_sockets(0, "127.0.0.1")
        server = httpserver.HTTPServer(web.Application([("/", Echo)]))
        server.add_sockets(sockets)
        port = sockets[0].getsockname()[1]
        try:
            small = await post(port, 4000, b"x" * 4000)
            large = await post(port, 32 << 20, b"[]," * 10_000)  # 32 MiB announced, many small JSON values
        finally:
            server.stop()
        return small, large

    try:
        small, large = asyncio.run(attack())
    finally:
        httpserver.HTTPServer.configure(None)
    assert small.startswith(b"HTTP/1.1 200") and small.endswith(b"4000")
    assert large.startswith(b"HTTP/1.1 400")
    assert handled == [4000]


def test_a_start_stopped_by_its_user_answers_409_not_500() -> None:
    async def interrupted_spawn(self: Any) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.05, future.cancel)  # the DELETE cancels the spawn future
        await future

    guarded = pending.guard_spawn(interrupted_spawn)
    with pytest.raises(web.HTTPError) as err:
        asyncio.run(guarded(None))
    assert err.value.status_code == 409

    async def request_cancelled() -> None:  # the request's own cancellation still propagates
        task = asyncio.ensure_future(guarded(None))
        await asyncio.sleep(0.01)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(request_cancelled())


def test_a_stop_during_the_hubs_check_waits_for_it() -> None:
    spawner = SimpleNamespace(pending="check", active=True)
    user = SimpleNamespace(spawners={"": spawner})
    stopped: list[float] = []

    async def stop(self: Any, user: Any, server_name: str = "") -> str:
        assert spawner.pending is None, "stopped while the check was pending: JupyterHub raises (500)"
        stopped.append(time.monotonic())
        return "stopping"

    async def check_ends_soon() -> str:
        asyncio.get_running_loop().call_later(0.3, setattr, spawner, "pending", None)
        return str(await pending.guard_stop(stop)(None, user, ""))

    assert asyncio.run(check_ends_soon()) == "stopping"
    assert len(stopped) == 1

    async def check_never_ends() -> None:
        spawner.pending = "check"
        await pending._after_check(spawner, wait=0.3)

    with pytest.raises(web.HTTPError) as err:
        asyncio.run(check_never_ends())
    assert err.value.status_code == 503

    async def check_finds_it_gone() -> object:  # the check stopped it (its node gone): nothing left to stop
        spawner.pending = "check"

        def gone() -> None:
            spawner.pending, spawner.active = None, False

        asyncio.get_running_loop().call_later(0.2, gone)
        return await pending.guard_stop(stop)(None, user, "")

    assert asyncio.run(check_finds_it_gone()) is None
    assert len(stopped) == 1


def test_a_stop_during_another_stop_or_a_cancelled_start_never_raises() -> None:
    """JupyterHub raises (a 500) when a stop meets a stop under way, or the start it just cancelled still cleaning
    up: the first is returned as it is, the second waited for."""
    calls: list[str] = []

    async def stop(self: Any, user: Any, server_name: str = "") -> str:
        calls.append("stopped")
        return "stopping"

    under_way = SimpleNamespace(pending="stop", active=True, _stop_future="the stop under way")
    assert asyncio.run(pending.guard_stop(stop)(None, SimpleNamespace(spawners={"": under_way}), "")) == (
        "the stop under way"
    )
    assert calls == []

    cleaning = SimpleNamespace(pending="spawn", active=True)

    async def start_cleans_up() -> object:
        def done() -> None:
            cleaning.pending, cleaning.active = None, False

        asyncio.get_running_loop().call_later(0.2, done)
        return await pending.guard_stop(stop)(None, SimpleNamespace(spawners={"": cleaning}), "")

    assert asyncio.run(start_cleans_up()) is None
    assert calls == []
