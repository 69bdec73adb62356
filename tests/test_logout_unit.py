"""Log Out: which servers it ends and how it reports them, when a logout counts as the user's own click, and the
page the role installs (rendered with JupyterHub's own templates, as the hub does). End to end: Molecule's
test_login.py (a running job gone from squeue) and the browser test."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from hubpages import CONTEXT, environment

from jupyterhub_hpc.logout import (
    HPCLogoutHandler,
    ServerAtLogout,
    end_servers,
    job_of,
    referer_trusted,
    running_servers,
    top_level_navigation,
)
from jupyterhub_hpc.pam import HPCPAMAuthenticator

# -- the Referer rule ----------------------------------------------------------------------------------------------
OWN = ["/hub/", "/user/alice/"]


@pytest.mark.parametrize(
    ("referer", "user_host", "trusted"),
    [
        ("https://hub.example.org/hub/home", "https://alice.hub.example.org", True),  # the hub's own page
        ("https://alice.hub.example.org/", "https://alice.hub.example.org", True),  # her JupyterLab (origin only)
        ("https://ALICE.hub.example.org/lab/tree/x", "https://alice.hub.example.org", True),
        ("https://bob.hub.example.org/", "https://alice.hub.example.org", False),  # another user's server
        ("https://evil.example.net/hub/home", "https://alice.hub.example.org", False),
        ("https://hub.example.org/user/bob/files/x.html", "", False),  # one origin: bob's pages are not hers
        ("https://hub.example.org/user/alice/lab", "", True),
        ("https://hub.example.org/", "", False),
        ("", "https://alice.hub.example.org", False),  # no Referer: ask
        ("javascript:alert(1)", "", False),
        ("https://[bad/", "", False),
        # The login (or spawn) page forwarding to a `next` that a link chose: not her click on that page.
        ("https://hub.example.org/hub/login?next=%2Fhub%2Flogout", "https://alice.hub.example.org", False),
        ("https://hub.example.org/hub/spawn-pending/alice?next=%2Fhub%2Flogout", "", False),
        ("https://hub.example.org/hub/spawn?next=", "", False),
    ],
)
def test_referer_trusted(referer: str, user_host: str, trusted: bool) -> None:
    assert referer_trusted(referer, "hub.example.org", OWN, user_host) is trusted


NAVIGATION = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


@pytest.mark.parametrize(
    ("headers", "navigation"),
    [
        (NAVIGATION, True),
        ({**NAVIGATION, "Sec-Fetch-Dest": "image"}, False),  # <img src=/hub/logout> in a notebook she opened
        ({"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}, False),
        ({"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}, False),  # fetch()
        ({"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}, False),
        ({}, False),  # no Fetch Metadata: not known to be her click
    ],
)
def test_top_level_navigation(headers: dict[str, str], navigation: bool) -> None:
    assert top_level_navigation(headers) is navigation


def test_handler_asks_with_its_own_request() -> None:
    def fake(referer: str, subdomain_host: str, fetch: dict[str, str] | None = None) -> Any:
        fetch = NAVIGATION if fetch is None else fetch
        headers = {**fetch, "Referer": referer} if referer else dict(fetch)
        request = SimpleNamespace(headers=headers, host="localhost:8000")
        return SimpleNamespace(subdomain_host=subdomain_host, hub=SimpleNamespace(base_url="/hub/"), request=request)

    alice = SimpleNamespace(host="http://alice.localhost:8000", url="/user/alice/")
    own = HPCLogoutHandler._from_own_pages
    assert own(fake("http://alice.localhost:8000/", "http://localhost:8000"), alice)
    assert own(fake("http://localhost:8000/hub/home", "http://localhost:8000"), alice)
    assert not own(fake("http://bob.localhost:8000/", "http://localhost:8000"), alice)
    assert not own(fake("", "http://localhost:8000"), alice)
    # One origin: the user's host is the hub's, so only her own path counts.
    assert not own(fake("http://localhost:8000/user/bob/", ""), alice)
    assert own(fake("http://localhost:8000/user/alice/lab", ""), alice)
    # Her own origin, but an image in a page she opened there (a notebook someone gave her): ask.
    assert not own(fake("http://alice.localhost:8000/", "http://localhost:8000", {"Sec-Fetch-Dest": "image"}), alice)


# -- ending servers ------------------------------------------------------------------------------------------------
class FakeSpawner:
    def __init__(self, pending: str | None = None, active: bool = True, job_id: str = "", submitted: str = "") -> None:
        self.pending = pending
        self.active = active
        self.job = job_id or submitted  # a running server's job, or a starting one's
        self._spawn_future: asyncio.Future[Any] | None = None

    def owned_jobs(self) -> tuple[str, ...]:
        return (self.job,) if self.job else ()


def test_job_of() -> None:
    assert job_of(FakeSpawner(job_id="42")) == "42"
    assert job_of(FakeSpawner(submitted="43")) == "43"
    assert job_of(FakeSpawner(job_id="42; rm -rf /")) == ""
    assert job_of(SimpleNamespace()) == ""


def test_end_servers_reports_each_outcome() -> None:
    async def run() -> tuple[list[ServerAtLogout], list[str], bool]:
        stopped: list[str] = []
        slow: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        starting = FakeSpawner(pending="spawn", submitted="13")
        starting._spawn_future = asyncio.ensure_future(asyncio.sleep(60))

        def settle() -> None:  # what the spawner's start does once cancelled: cancels its job, clears the flag
            starting.pending = None
            starting.active = False

        asyncio.get_running_loop().call_later(0.01, settle)
        spawners: dict[str, Any] = {
            "": FakeSpawner(job_id="10"),
            "slow": FakeSpawner(job_id="11"),
            "broken": FakeSpawner(job_id="12"),
            "starting": starting,
            "leaving": FakeSpawner(pending="stop", job_id="14"),
            "idle": FakeSpawner(active=False),
        }

        async def stop(name: str) -> asyncio.Future[None]:
            stopped.append(name)
            if name == "broken":
                raise RuntimeError("pending spawn")
            if name == "slow":
                return slow
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

        results = await end_servers(spawners, stop, settle_seconds=0.05)
        assert starting._spawn_future is not None
        await asyncio.sleep(0)
        return results, stopped, starting._spawn_future.cancelled()

    results, stopped, cancelled = asyncio.run(run())
    assert results == [
        ServerAtLogout("", "10", "stopped"),
        ServerAtLogout("broken", "12", "failed"),
        ServerAtLogout("leaving", "14", "stopping"),
        ServerAtLogout("slow", "11", "stopping"),
        ServerAtLogout("starting", "13", "cancelled"),
    ]
    assert sorted(stopped) == ["", "broken", "slow"]  # the starting server ended with its spawn: no stop needed
    assert cancelled


def test_a_stop_that_failed_is_reported() -> None:
    async def run() -> list[ServerAtLogout]:
        async def stop(name: str) -> asyncio.Future[None]:
            failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            failed.set_exception(RuntimeError("scancel: error"))
            return failed

        return await end_servers({"": FakeSpawner(job_id="7")}, stop)

    assert asyncio.run(run()) == [ServerAtLogout("", "7", "failed")]


def test_running_servers() -> None:
    spawners: dict[str, Any] = {
        "": FakeSpawner(job_id="5"),
        "q": FakeSpawner(pending="spawn", submitted="6"),
        "off": FakeSpawner(active=False),
    }
    assert running_servers(spawners) == [ServerAtLogout("", "5", "kept"), ServerAtLogout("q", "6", "kept")]


def test_the_spawner_registers_the_logout_whatever_the_authenticator() -> None:
    """The spawner's module puts the logout in JupyterHub's own place; the authenticator does not register it, so a
    site that changes authenticator keeps it."""
    from jupyterhub import handlers as hub_handlers

    import jupyterhub_hpc.spawner  # noqa: F401  (its import installs the logout)

    routes = [handler for route, handler, *_rest in hub_handlers.default_handlers if route == r"/logout"]
    assert routes == [HPCLogoutHandler]
    assert "/logout" not in dict(HPCPAMAuthenticator().get_handlers(None))
    assert "/login" in dict(HPCPAMAuthenticator().get_handlers(None))


# -- the page ------------------------------------------------------------------------------------------------------
def render(**ns: Any) -> str:
    return environment().get_template("logout.html").render(**(CONTEXT | ns))


def text(html: str) -> str:
    return " ".join(html.split())


def test_page_after_logout_names_the_jobs() -> None:
    servers = [
        vars(ServerAtLogout("", "10", "stopped")),
        vars(ServerAtLogout("gpu", "11", "stopping")),
        vars(ServerAtLogout("q", "12", "cancelled")),
        vars(ServerAtLogout("x", "13", "failed")),
    ]
    page = text(render(hpc_servers=servers, hpc_logout_confirm=False))
    assert "You are logged out of Demo." in page
    assert "Your server was stopped: Slurm job 10 was cancelled and its resources are free." in page
    assert "Your server &ldquo;gpu&rdquo; is stopping: Slurm job 11 is being cancelled." in page
    assert "Your server &ldquo;q&rdquo; was still starting: Slurm job 12 was cancelled." in page
    assert "<code>scancel 13</code>" in page
    assert 'href="/hub/login"' in page
    assert "<form" not in page


def test_page_when_servers_are_kept() -> None:
    page = text(render(hpc_servers=[vars(ServerAtLogout("", "10", "kept"))], hpc_logout_confirm=False))
    assert "Your server keeps running (Slurm job 10) until its time limit" in page


def test_confirmation_page_posts_with_the_xsrf_token() -> None:
    page = text(render(hpc_servers=[vars(ServerAtLogout("", "10", "kept"))], hpc_logout_confirm=True))
    assert '<form method="post" action="/hub/logout">' in page
    assert '<input type="hidden" name="_xsrf" value="XSRF-TOKEN" />' in page
    assert "Your server: Slurm job 10" in page
    assert "You are logged out" not in page


def test_page_escapes_server_names() -> None:
    page = render(hpc_servers=[vars(ServerAtLogout("<script>x</script>", "", "stopped"))], hpc_logout_confirm=False)
    assert "<script>x" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
