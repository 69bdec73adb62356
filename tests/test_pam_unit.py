"""The authenticator's decisions, first with PAM replaced (wrong password, inactive account, throttling, bounded
input, escaped logs, source address), then against the real PAM of this machine with pam_oath as second factor
(as root, with libpam-oath installed: CI on Debian 12; skipped otherwise, with the reason)."""

from __future__ import annotations

import asyncio
import glob
import hashlib
import hmac
import logging
import os
import shutil
import statistics
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from ctypes import POINTER, c_char, c_char_p, c_void_p, cast, create_string_buffer, pointer
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import pamela
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tornado import web

from jupyterhub_hpc.pam import (
    PAM_CONV_ERR,
    Conversation,
    FailureLog,
    HPCPAMAuthenticator,
    PamResult,
    address_key,
    client_address,
    loggable,
    pam_login,
)

ROOT = Path(__file__).resolve().parents[1]
FAST = 0.2  # failed_login_min_seconds in the tests that are not about it


# -- PAM replaced ------------------------------------------------------------------------------------------------
@dataclass
class FakePam:
    """Stands for pam_login: which passwords are right, whether accounts are active; records the calls."""

    password: str = "pw"
    account_ok: bool = True
    delay: float = 0.0
    inactive: frozenset[str] = frozenset()  # accounts whose check fails (account_ok False: all of them)
    broken: frozenset[str] = frozenset()  # names for which libpam fails (an exception: a 500)
    calls: list[tuple[str, str, str, str]] = field(default_factory=list)

    def __call__(self, username: str, password: str, otp: str = "", **kwargs: Any) -> PamResult:
        assert kwargs["check_account"] is True
        self.calls.append((username, password, otp, kwargs["rhost"]))
        time.sleep(self.delay)
        if username in self.broken:
            raise OSError("libpam is gone")
        if password != self.password:
            return PamResult(7, "authenticate", "Authentication failure")
        if not self.account_ok or username in self.inactive:
            return PamResult(13, "account", "User account has expired")
        return PamResult(0, "account", "Success")


def authenticator(monkeypatch: pytest.MonkeyPatch, pam: FakePam | None = None, **config: Any) -> HPCPAMAuthenticator:
    monkeypatch.setattr("jupyterhub_hpc.pam.pam_login", pam or FakePam())
    config.setdefault("failed_login_min_seconds", FAST)
    config.setdefault("allow_all", True)  # the tests of authenticate alone; JupyterHub's checks come after it
    return HPCPAMAuthenticator(cluster_name="Fir", **config)


# The demo's accounts as NSS would tell them: everyone's primary group is hubusers (the allowed group) but
# mallory's and oscar's; bob is in it too, but blocked.
ACCOUNTS = {
    "alice": 2000,
    "bob": 2000,
    "dave": 2000,
    "erin": 2000,
    "mallory": 2099,
    "oscar": 2099,
    # Names as sites have them (capitals and a dot; SSSD's fully qualified name), in the allowed group.
    "Alice.Smith": 2000,
    "alice@example.org": 2000,
}


def hub_authenticator(
    monkeypatch: pytest.MonkeyPatch, pam: FakePam | None = None, **config: Any
) -> HPCPAMAuthenticator:
    """As the hub runs it: allowed_groups (hubusers) and blocked_users (bob), with NSS replaced (ACCOUNTS)."""
    config.setdefault("allowed_groups", {"hubusers"})
    config.setdefault("blocked_users", {"bob"})
    auth = authenticator(monkeypatch, pam, allow_all=False, **config)

    def getpwnam(name: str) -> Any:
        return SimpleNamespace(pw_name=name, pw_gid=ACCOUNTS[name])  # KeyError for an unknown name, as pwd's

    def getgrnam(name: str) -> Any:
        return SimpleNamespace(gr_name=name, gr_gid={"hubusers": 2000}[name])

    monkeypatch.setattr(auth, "_getpwnam", getpwnam)
    monkeypatch.setattr(auth, "_getgrnam", getgrnam)
    monkeypatch.setattr(auth, "_getgrouplist", lambda name, gid: [gid])
    return auth


def hub_login(auth: HPCPAMAuthenticator, user: str = "alice", password: str = "pw", h: Any = None) -> Any:
    """A login as the hub makes it for the login form and the token API: get_authenticated_user, which runs
    authenticate and then JupyterHub's blocked and allowed checks. The user's model, None, or the HTTPError."""

    async def run() -> Any:
        return await auth.get_authenticated_user(
            h if h is not None else handler(), {"username": user, "password": password}
        )

    try:
        return asyncio.run(run())
    except web.HTTPError as err:
        return err


def handler(peer: str = "198.51.100.7", headers: dict[str, str] | None = None, local: str = "10.0.0.2") -> Any:
    """What the authenticator uses of a login request: the TCP peer, this end's address, the headers."""
    sock = SimpleNamespace(getsockname=lambda: (local, 8081))
    connection = SimpleNamespace(
        context=SimpleNamespace(address=(peer, 40000), trusted_downstream=set()),
        stream=SimpleNamespace(socket=sock),
    )
    return SimpleNamespace(request=SimpleNamespace(remote_ip=peer, headers=headers or {}, connection=connection))


def login(auth: HPCPAMAuthenticator, user: str = "alice", password: str = "pw", otp: str = "", h: Any = None) -> Any:
    data = {"username": user, "password": password}
    if otp:
        data["otp"] = otp

    async def run() -> Any:
        return await auth.authenticate(h if h is not None else handler(), data)

    return asyncio.run(run())


def timed_login(auth: HPCPAMAuthenticator, **kwargs: Any) -> tuple[Any, float]:
    start = time.monotonic()
    try:
        result = login(auth, **kwargs)
    except web.HTTPError as err:
        result = err
    return result, time.monotonic() - start


def test_right_password_and_active_account_log_in(monkeypatch: pytest.MonkeyPatch) -> None:
    assert login(authenticator(monkeypatch)) == "alice"


def test_wrong_password_reveals_nothing_about_the_account(monkeypatch: pytest.MonkeyPatch) -> None:
    assert login(authenticator(monkeypatch, FakePam(account_ok=False)), password="nope") is None


def test_inactive_account_is_told_what_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(web.HTTPError) as err:
        login(authenticator(monkeypatch, FakePam(account_ok=False)))
    assert err.value.status_code == 403
    assert err.value.log_message == (
        "Your account or your access to Fir is currently inactive. Please check that: your account is active "
        "(it has been renewed); your access to Fir is enabled."
    )


def test_failed_login_takes_the_minimum_time_and_a_success_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = authenticator(monkeypatch, failed_login_min_seconds=0.5)
    result, failed = timed_login(auth, password="nope")
    assert result is None and 0.5 <= failed < 0.7
    result, succeeded = timed_login(auth)
    assert result == "alice" and succeeded < 0.2


def test_every_failure_takes_the_same_time_whatever_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The attacker's stopwatch, through get_authenticated_user (the login form's and the token API's way in), with
    a PAM that answers at once: the right password of an account outside the allowed group, of a blocked account,
    of an inactive one (allowed: 403; not allowed: the plain failure), a wrong password, a name never given to PAM
    and an error in PAM (500) all take failed_login_min_seconds, within 30 ms of each other at p50."""
    minimum = 0.3
    pam = FakePam(inactive=frozenset({"dave", "oscar"}), broken=frozenset({"erin"}))
    auth = hub_authenticator(
        monkeypatch, pam, failed_login_min_seconds=minimum, login_failures_per_user=0, login_failures_per_address=0
    )
    attempts: dict[str, tuple[str, str, Callable[[Any], bool]]] = {
        "not in the allowed group, right password": ("mallory", "pw", lambda r: r is None),
        "blocked, right password": ("bob", "pw", lambda r: r is None),
        "wrong password": ("alice", "nope", lambda r: r is None),
        "unknown name (not a valid one)": ("No Such User", "pw", lambda r: r is None),
        "inactive, allowed": ("dave", "pw", lambda r: isinstance(r, web.HTTPError) and r.status_code == 403),
        "inactive, not allowed": ("oscar", "pw", lambda r: r is None),
        "error in PAM": ("erin", "pw", lambda r: isinstance(r, OSError)),
    }
    times: dict[str, list[float]] = {what: [] for what in attempts}
    for _i in range(3):
        for what, (user, password, expected) in attempts.items():  # interleaved
            start = time.monotonic()
            try:
                result = hub_login(auth, user, password)
            except OSError as err:
                result = err
            times[what].append(time.monotonic() - start)
            assert expected(result), (what, result)
    medians = {what: statistics.median(t) for what, t in times.items()}
    print("\n" + "\n".join(f"{what}: p50 {took:.4f} s" for what, took in medians.items()))
    assert all(minimum <= took < minimum + 0.1 for t in times.values() for took in t), times
    assert max(medians.values()) - min(medians.values()) < 0.03, medians


def test_a_right_password_for_an_account_not_allowed_is_a_failure(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """It counts toward the name's (and the address's) limit and resets nothing: a name's next answer cannot tell
    whether one of its earlier attempts had the right password."""
    auth = hub_authenticator(monkeypatch, failed_login_min_seconds=0.0, login_failures_per_user=3)
    for user in ("mallory", "bob"):  # outside the allowed group; blocked
        with caplog.at_level(logging.WARNING):
            assert hub_login(auth, user, "nope") is None
            assert hub_login(auth, user, "pw") is None
            assert hub_login(auth, user, "pw") is None
        refused = hub_login(auth, user, "pw")
        assert isinstance(refused, web.HTTPError) and refused.status_code == 429, user
    assert auth.failures_by_address.retry_after("198.51.100.7", time.monotonic()) == 0.0
    assert len(auth.failures_by_address._table["198.51.100.7"]) == 6  # every one of them, for the address too
    logged = [r.getMessage() for r in caplog.records if "Failed login for 'mallory'" in r.getMessage()]
    assert (
        logged[-1] == "Failed login for 'mallory' from 198.51.100.7: right credentials, but not allowed to use the hub"
    )
    # An allowed user's right password still resets her name's count.
    for _i in range(2):
        assert hub_login(auth, "alice", "nope") is None
    assert hub_login(auth, "alice", "pw")["name"] == "alice"
    for _i in range(3):
        assert hub_login(auth, "alice", "nope") is None


def test_parallel_logins_are_decided_each_on_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overlapping logins of an allowed and a not allowed account: each one's count is its own."""
    auth = hub_authenticator(
        monkeypatch, FakePam(delay=0.1), failed_login_min_seconds=0.0, login_failures_per_user=3, executor_threads=8
    )

    async def storm() -> list[Any]:
        logins = [
            auth.get_authenticated_user(handler(f"198.51.100.{i}"), {"username": user, "password": "pw"})
            for i, user in enumerate(["mallory", "alice"] * 3)
        ]
        results: list[Any] = await asyncio.gather(*logins)
        return results

    results = asyncio.run(storm())
    assert [r if r is None else r["name"] for r in results] == [None, "alice"] * 3
    now = time.monotonic()
    assert auth.failures_by_name.retry_after("mallory", now) > 0  # 3 failures: refused
    assert auth.failures_by_name.retry_after("alice", now) == 0.0
    assert "alice" not in auth.failures_by_name._table


def test_the_inactive_page_is_only_for_accounts_the_hub_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = hub_authenticator(monkeypatch, FakePam(account_ok=False), login_failures_per_user=2)
    for _i in range(3):  # dave: allowed, told what to check, and not a failure
        result = hub_login(auth, "dave", "pw")
        assert isinstance(result, web.HTTPError) and result.status_code == 403
        assert "currently inactive" in str(result.log_message)
    assert hub_login(auth, "mallory", "pw") is None  # not allowed: the plain failure, counted
    assert hub_login(auth, "mallory", "pw") is None
    refused = hub_login(auth, "mallory", "pw")
    assert isinstance(refused, web.HTTPError) and refused.status_code == 429


def test_an_allowed_users_login_is_not_delayed(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = hub_authenticator(monkeypatch, failed_login_min_seconds=0.5)
    start = time.monotonic()
    user = hub_login(auth, "alice", "pw")
    took = time.monotonic() - start
    assert user["name"] == "alice" and took < 0.1


@pytest.mark.parametrize("data", [None, "alice", ["alice", "pw"], {"username": 7}])
def test_a_token_request_without_a_username_and_password_is_a_failure(
    monkeypatch: pytest.MonkeyPatch, data: Any
) -> None:
    """The token API passes its body's "auth" as it is: not a form, the plain failure, after the same time."""
    pam = FakePam()
    auth = hub_authenticator(monkeypatch, pam, failed_login_min_seconds=0.2)

    async def run() -> Any:
        return await auth.get_authenticated_user(handler(), data)

    start = time.monotonic()
    assert asyncio.run(run()) is None
    assert time.monotonic() - start >= 0.2
    assert pam.calls == []


def test_the_form_fields_reach_pam_with_the_source_address(monkeypatch: pytest.MonkeyPatch) -> None:
    pam = FakePam()
    auth = authenticator(monkeypatch, pam)
    assert login(auth, otp=" 123456 ", h=handler("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"})) == "alice"
    assert pam.calls == [("alice", "pw", "123456", "203.0.113.9")]


@pytest.mark.parametrize(
    ("user", "password", "otp"),
    [
        ("a" * 65, "pw", ""),
        ("alice bob", "pw", ""),
        ("-alice", "pw", ""),
        ("alice;id", "pw", ""),
        ("alice:x", "pw", ""),
        ("12345", "pw", ""),  # a uid to Slurm and many tools
        ("alice\nFAKE", "pw", ""),
        ("../etc", "pw", ""),
        ("alice", "", ""),
        ("alice", "x" * 1025, ""),
        ("alice", "é" * 513, ""),  # 1026 bytes
        ("alice", "pw\0rest", ""),  # C strings: PAM would see "pw"
        ("alice", "pw", "1" * 33),
        ("alice", "pw", "12 34"),
        ("alice", "pw", "12\x1b34"),
    ],
)
def test_bad_input_never_reaches_pam(monkeypatch: pytest.MonkeyPatch, user: str, password: str, otp: str) -> None:
    pam = FakePam()
    auth = authenticator(monkeypatch, pam, failed_login_min_seconds=0.0)
    assert login(auth, user=user, password=password, otp=otp) is None
    assert pam.calls == []


@pytest.mark.parametrize("user", ["Alice.Smith", "alice@example.org"])
def test_a_name_as_sites_have_it_logs_in_as_the_system_spells_it(monkeypatch: pytest.MonkeyPatch, user: str) -> None:
    """JupyterHub's own normalization lowercases: Alice.Smith would be the hub user alice.smith, whom neither the
    allowed group (NSS) nor sudo nor Slurm knows. The hub user is the account PAM said yes to, spelled as typed."""
    pam = FakePam()
    auth = hub_authenticator(monkeypatch, pam)
    assert hub_login(auth, user)["name"] == user
    assert [call[0] for call in pam.calls] == [user]
    assert auth.normalize_username(user) == user


def test_username_map_and_the_round_trip_through_the_passwd_database_still_apply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = authenticator(monkeypatch, username_map={"ASmith": "Alice.Smith"})
    assert auth.normalize_username("ASmith") == "Alice.Smith"
    # pam_normalize_username: upstream's round trip (name -> uid -> name), e.g. SSSD answering for "ALICE" too.
    monkeypatch.setattr("pwd.getpwnam", lambda name: SimpleNamespace(pw_uid=2006))
    monkeypatch.setattr("pwd.getpwuid", lambda uid: SimpleNamespace(pw_name="Alice.Smith"))
    assert authenticator(monkeypatch, pam_normalize_username=True).normalize_username("ALICE.SMITH") == "Alice.Smith"


def test_the_sites_pattern_decides_before_pam(monkeypatch: pytest.MonkeyPatch) -> None:
    pam = FakePam()
    auth = authenticator(monkeypatch, pam, login_username_pattern="[a-z_][a-z0-9_-]{0,31}", failed_login_min_seconds=0)
    assert login(auth, user="Alice.Smith") is None
    assert login(auth, user="alice") == "alice"
    assert [call[0] for call in pam.calls] == ["alice"]


def test_longest_input_still_reaches_pam(monkeypatch: pytest.MonkeyPatch) -> None:
    pam = FakePam(password="x" * 1024)
    auth = authenticator(monkeypatch, pam)
    assert login(auth, user="a" * 64, password="x" * 1024, otp="1" * 32) == "a" * 64


def test_failures_are_throttled_per_user_name(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = authenticator(monkeypatch, failed_login_min_seconds=0.0, login_failure_window_seconds=0.5)
    for i in range(5):
        assert login(auth, password="nope", h=handler(f"198.51.100.{i}")) is None  # from 5 addresses
    result, took = timed_login(auth, h=handler("198.51.100.99"))  # the right password, from a 6th address
    assert isinstance(result, web.HTTPError) and result.status_code == 429
    assert result.log_message == "Too many failed logins. Please wait 1 seconds and try again."
    assert took < 0.1
    assert login(auth, user="bob") == "bob"  # other names are not concerned
    time.sleep(0.5)
    assert login(auth) == "alice"  # the window has passed


def test_failures_are_throttled_per_address(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = authenticator(monkeypatch, failed_login_min_seconds=0.0, login_failures_per_address=10)
    for i in range(10):
        assert login(auth, user=f"user{i}", password="nope") is None
    result, _took = timed_login(auth, user="someone")
    assert isinstance(result, web.HTTPError) and result.status_code == 429
    assert "Please wait 5 minutes" in str(result.log_message)
    assert login(auth, user="someone", h=handler("192.0.2.1")) == "someone"  # other addresses are not concerned


def test_x_real_ip_does_not_escape_the_address_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = authenticator(monkeypatch, failed_login_min_seconds=0.0, login_failures_per_address=3)
    for i in range(3):
        spoof = {"X-Real-Ip": f"203.0.113.{i}", "X-Forwarded-For": f"192.0.2.{i}, 198.51.100.7"}
        assert login(auth, user=f"user{i}", password="nope", h=handler("127.0.0.1", spoof)) is None
    with pytest.raises(web.HTTPError) as err:
        spoof = {"X-Real-Ip": "203.0.113.99", "X-Forwarded-For": "192.0.2.99, 198.51.100.7"}
        login(auth, user="user9", h=handler("127.0.0.1", spoof))
    assert err.value.status_code == 429


def test_a_success_resets_the_name_but_not_the_address(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = authenticator(monkeypatch, failed_login_min_seconds=0.0, login_failures_per_address=6)
    for _i in range(4):
        assert login(auth, password="nope") is None
    assert login(auth) == "alice"
    for _i in range(2):  # 4 + 2 failures for the address; the name starts again from 0
        assert login(auth, password="nope") is None
    with pytest.raises(web.HTTPError) as err:
        login(auth, user="bob")
    assert err.value.status_code == 429


def test_an_inactive_account_with_its_right_password_is_not_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = authenticator(monkeypatch, FakePam(account_ok=False), login_failures_per_user=2)
    for _i in range(3):
        with pytest.raises(web.HTTPError) as err:
            login(auth)
        assert err.value.status_code == 403


def test_parallel_attempts_cannot_pass_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    pam = FakePam(delay=0.2)
    auth = authenticator(monkeypatch, pam, failed_login_min_seconds=0.0, executor_threads=20)

    async def storm() -> list[Any]:
        attempts = [
            auth.authenticate(handler(f"198.51.100.{i}"), {"username": "alice", "password": f"guess{i}"})
            for i in range(20)
        ]
        return await asyncio.gather(*attempts, return_exceptions=True)

    results = asyncio.run(storm())
    assert len(pam.calls) == 5
    assert sum(isinstance(r, web.HTTPError) and r.status_code == 429 for r in results) == 15


def test_the_tables_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = authenticator(
        monkeypatch, failed_login_min_seconds=0.0, login_failure_table_size=50, login_failures_per_address=0
    )
    for i in range(500):
        assert login(auth, user=f"random{i}", password="nope", h=handler(f"10.1.{i // 200}.{i % 200}")) is None
    assert len(auth.failures_by_name) == 50
    assert len(auth.failures_by_address) == 0  # limit 0: off
    assert auth.failures_by_name.retry_after("random499", time.monotonic()) == 0.0


@given(st.lists(st.tuples(st.text(max_size=3), st.floats(0, 100)), max_size=200))
def test_failure_log_never_holds_more_than_its_size(events: list[tuple[str, float]]) -> None:
    log = FailureLog(limit=3, window=10.0, size=7)
    now = 0.0
    for key, step in events:
        now += step
        log.add(key, now)
        assert len(log) <= 7
        assert log.retry_after(key, now) <= 10.0


def test_failed_logins_are_logged_with_the_address_and_an_escaped_name(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    auth = authenticator(monkeypatch, failed_login_min_seconds=0.0)
    hostile = "x\n[W hub] in: root\x1b[2J\u2028" + "y" * 100
    with caplog.at_level(logging.WARNING):
        login(auth, user=hostile, password="nope", h=handler("127.0.0.1", {"X-Forwarded-For": "203.0.113.5"}))
        login(auth, user="alice", password="nope")
    lines = [r.getMessage() for r in caplog.records if "Failed login" in r.getMessage()]
    assert len(lines) == 2
    assert lines[0] == (
        "Failed login for 'x\\n[W hub] in: root\\x1b[2J\\u2028" + "y" * 41 + "'...(123 chars) from 203.0.113.5: "
        "not a valid user name"
    )
    assert lines[1] == "Failed login for 'alice' from 198.51.100.7: Authentication failure"
    for line in lines:
        assert line.isprintable() and line.isascii()


def test_loggable_escapes_and_truncates() -> None:
    assert loggable("alice") == "'alice'"
    assert loggable("a\r\nb") == "'a\\r\\nb'"
    assert loggable("é" * 64) == "'" + "\\xe9" * 64 + "'"  # a name as long as the longest valid one: whole
    assert loggable("é" * 70) == "'" + "\\xe9" * 64 + "'...(70 chars)"


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        ("198.51.100.7", {}, "198.51.100.7"),
        # Not through a proxy (a user's code on a compute node): headers are not believed.
        ("10.0.0.9", {"X-Forwarded-For": "203.0.113.1", "X-Real-Ip": "203.0.113.2"}, "10.0.0.9"),
        # Through the proxy (loopback, or this host's own address): its last X-Forwarded-For entry.
        ("127.0.0.1", {"X-Forwarded-For": "192.0.2.66, 203.0.113.1"}, "203.0.113.1"),
        ("10.0.0.2", {"X-Forwarded-For": "203.0.113.1"}, "203.0.113.1"),
        ("::ffff:127.0.0.1", {"X-Forwarded-For": "2001:db8::5"}, "2001:db8::5"),
        ("127.0.0.1", {"X-Real-Ip": "203.0.113.2"}, "127.0.0.1"),
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.1, bogus"}, "127.0.0.1"),
    ],
)
def test_client_address(peer: str, headers: dict[str, str], expected: str) -> None:
    assert client_address(handler(peer, headers).request) == expected


def test_client_address_skips_trusted_proxies() -> None:
    request = handler("192.0.2.10", {"X-Forwarded-For": "203.0.113.1, 192.0.2.20"}).request
    assert client_address(request, ["192.0.2.10"]) == "192.0.2.20"
    request.connection.context.trusted_downstream = {"192.0.2.20"}  # JupyterHub's trusted_downstream_ips
    assert client_address(request, ["192.0.2.10"]) == "203.0.113.1"


def test_ipv6_addresses_are_counted_per_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert address_key("203.0.113.1") == "203.0.113.1"


# -- the conversation, driven as PAM drives it -----------------------------------------------------------------------
def converse(conversation: Conversation, messages: list[tuple[int, bytes]]) -> tuple[int, list[bytes | None]]:
    """Call the conversation function as libpam does; return its code and the responses (freed here)."""
    buffers = [create_string_buffer(text) for _style, text in messages]
    structs = [
        pamela.PamMessage(style, cast(buf, POINTER(c_char)))
        for (style, _text), buf in zip(messages, buffers, strict=True)
    ]
    array = (POINTER(pamela.PamMessage) * len(structs))(*[pointer(s) for s in structs])
    responses = POINTER(pamela.PamResponse)()
    code = conversation.callback(len(structs), array, pointer(responses), None)
    answers: list[bytes | None] = []
    if code == 0:
        for i in range(len(structs)):
            resp = responses[i].resp
            answers.append(cast(resp, c_char_p).value if resp else None)
            if resp:
                pamela.LIBC["free"](cast(resp, c_void_p))
        pamela.LIBC["free"](cast(responses, c_void_p))
    return code, answers


OFF, ON, ERR, INFO = (pamela.PAM_PROMPT_ECHO_OFF, pamela.PAM_PROMPT_ECHO_ON, pamela.PAM_ERROR_MSG, pamela.PAM_TEXT_INFO)


def test_conversation_answers_password_then_otp_and_collects_messages() -> None:
    conv = Conversation(b"alice", [b"pw", b"123456"])
    assert converse(conv, [(INFO, b"Welcome\n"), (ON, b"login: "), (OFF, b"Password: ")]) == (
        0,
        [None, b"alice", b"pw"],
    )
    assert converse(conv, [(OFF, b"One-time password (OATH) for `alice': ")]) == (0, [b"123456"])
    assert converse(conv, [(ERR, b"bad\x1b[31m")]) == (0, [None])
    assert conv.messages == ["'Welcome\\n'", "'bad\\x1b[31m'"]
    assert conv.prompts[-1] == '"One-time password (OATH) for `alice\': "'


def test_conversation_is_bounded() -> None:
    conv = Conversation(b"alice", [b"pw", b""])
    assert converse(conv, [(OFF, b"Password: "), (OFF, b"OTP: ")])[0] == 0
    assert converse(conv, [(OFF, b"Third secret: ")])[0] == PAM_CONV_ERR  # no more secrets
    prompts = Conversation(b"alice", [b"pw", b""])
    assert converse(prompts, [(ON, b"?")] * 4)[0] == 0
    assert converse(prompts, [(ON, b"?")])[0] == PAM_CONV_ERR  # a fifth prompt
    assert converse(Conversation(b"alice", [b"pw"]), [(99, b"?")])[0] == PAM_CONV_ERR  # unknown style


# -- the real PAM of this machine ----------------------------------------------------------------------------------
SERVICE = "jhtest-otp"
OTP_USER, PW_USER = "jhtest-otp", "jhtest-pw"
SECRET = "3132333435363738393031323334353637383930"  # RFC 6238's test key
PAM_OATH = glob.glob("/usr/lib/*/security/pam_oath.so") + glob.glob("/lib/*/security/pam_oath.so")


def totp(secret_hex: str, at: float | None = None, step: int = 30, digits: int = 6) -> str:
    """RFC 6238 TOTP (HMAC-SHA1), as pam_oath's HOTP/T30/6 expects."""
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(bytes.fromhex(secret_hex), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


_LAST_STEP = [0]


def fresh_totp(secret_hex: str) -> str:
    """A code no earlier test used: pam_oath refuses a replayed or earlier code, and accepts the next steps
    (window=5), so each call takes the step after the last one (from now on) instead of waiting 30 s."""
    step = max(int(time.time() // 30), _LAST_STEP[0] + 1)
    _LAST_STEP[0] = step
    return totp(secret_hex, at=step * 30)


def _real_pam_skip_reason() -> str:
    if os.geteuid() != 0:
        return "real-PAM tests need root (they create users and /etc/pam.d/jhtest-otp)"
    if not PAM_OATH:
        return "libpam-oath is not installed (apt-get install libpam-oath oathtool; scripts/bootstrap.sh does)"
    if not (shutil.which("useradd") and shutil.which("chpasswd")):
        return "useradd/chpasswd missing"
    return ""


real_pam = pytest.mark.skipif(bool(_real_pam_skip_reason()), reason=_real_pam_skip_reason() or "-")


def _drop_user(name: str) -> None:
    subprocess.run(["userdel", name], capture_output=True, check=False)


@pytest.fixture(scope="module")
def pam_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The role's PAM service (templates/pam-service.j2, with pam_oath) under /etc/pam.d, and two users: one with
    a TOTP secret in the OATH users file, one with a password only. Removed afterwards."""
    oath_dir = tmp_path_factory.mktemp("oath")
    users_file = oath_dir / "users.oath"
    users_file.write_text(f"HOTP/T30/6 {OTP_USER} - {SECRET}\n")
    users_file.chmod(0o600)
    template = jinja2.Template((ROOT / "roles/jupyterhub_pam/templates/pam-service.j2").read_text())
    service_file = Path("/etc/pam.d") / SERVICE
    service_file.write_text(
        template.render(
            ansible_managed="test_pam_unit.py",
            jupyterhub_pam_service=SERVICE,
            jupyterhub_pam_min_uid=1000,
            jupyterhub_pam_auth_include="common-auth",
            jupyterhub_pam_account_include="common-account",
            jupyterhub_pam_oath_users_file=str(users_file),
            jupyterhub_pam_oath_window=5,
        )
    )
    for user in (OTP_USER, PW_USER):
        _drop_user(user)
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True)
        subprocess.run(["chpasswd"], input=f"{user}:{user}-pw\n", text=True, check=True)
    try:
        yield users_file
    finally:
        for user in (OTP_USER, PW_USER):
            _drop_user(user)
        service_file.unlink(missing_ok=True)
        shutil.rmtree(oath_dir, ignore_errors=True)


def real(username: str, password: str, otp: str = "") -> PamResult:
    return pam_login(username, password, otp, service=SERVICE, rhost="192.0.2.1")


@real_pam
def test_totp_matches_oathtool() -> None:
    if not shutil.which("oathtool"):
        pytest.skip("oathtool is not installed")
    now = time.time()
    if now % 30 > 28:
        time.sleep(2.1)
    out = subprocess.run(["oathtool", "--totp", SECRET], capture_output=True, text=True, check=True).stdout
    assert out.strip() == totp(SECRET)


@real_pam
def test_real_pam_password_and_otp(pam_service: Path) -> None:
    assert "pam_oath.so usersfile=" in (Path("/etc/pam.d") / SERVICE).read_text()
    wrong_otp = real(OTP_USER, f"{OTP_USER}-pw", "000000" if totp(SECRET) != "000000" else "111111")
    assert (wrong_otp.ok, wrong_otp.step) == (False, "authenticate")
    assert wrong_otp.prompts == ("'Password: '", f'"One-time password (OATH) for `{OTP_USER}\': "')
    no_otp = real(OTP_USER, f"{OTP_USER}-pw")
    assert not no_otp.ok
    code = fresh_totp(SECRET)
    wrong_password = real(OTP_USER, "not-the-password", code)
    assert not wrong_password.ok and wrong_password.prompts == ("'Password: '",)  # stops at pam_unix
    right = real(OTP_USER, f"{OTP_USER}-pw", code)
    assert (right.ok, right.step, right.error) == (True, "account", "Success")
    replayed = real(OTP_USER, f"{OTP_USER}-pw", code)
    assert not replayed.ok  # pam_oath remembers the last code used
    assert f"{OTP_USER}\t" in pam_service.read_text()  # ... in its users file


@real_pam
def test_real_pam_user_without_otp_logs_in_with_the_password(pam_service: Path) -> None:
    assert real(PW_USER, f"{PW_USER}-pw").ok
    assert real(PW_USER, f"{PW_USER}-pw", "123456").ok  # a code in the field is not asked for, not a problem
    assert real(PW_USER, f"{PW_USER}-pw").prompts == ("'Password: '",)
    assert not real(PW_USER, "wrong").ok
    assert not real("nosuchuser", "wrong").ok
    assert not real("root", "anything").ok  # below the service's minimum uid


@real_pam
def test_real_pam_failure_delay_is_the_authenticators(pam_service: Path) -> None:
    """pam_unix asks libpam for 2 s (+- 25 %) after a failure; here it is switched off (the authenticator pads)."""
    start = time.monotonic()
    assert not real(PW_USER, "wrong").ok
    assert time.monotonic() - start < 1.0


@real_pam
def test_real_pam_through_the_authenticator(pam_service: Path) -> None:
    auth = HPCPAMAuthenticator(service=SERVICE, cluster_name="Test", failed_login_min_seconds=FAST)
    assert login(auth, OTP_USER, f"{OTP_USER}-pw", fresh_totp(SECRET)) == OTP_USER
    assert login(auth, OTP_USER, f"{OTP_USER}-pw", "") is None
    assert login(auth, PW_USER, f"{PW_USER}-pw") == PW_USER


def p50_times(samples: int, attempts: list[Callable[[], Any]]) -> list[float]:
    times: list[list[float]] = [[] for _attempt in attempts]
    for _i in range(samples):
        for i, attempt in enumerate(attempts):  # interleaved: both see the same machine load
            start = time.monotonic()
            attempt()
            times[i].append(time.monotonic() - start)
    return [statistics.median(t) for t in times]


@real_pam
def test_real_pam_unknown_and_existing_users_fail_in_the_same_time(pam_service: Path) -> None:
    """No user enumeration by timing: a wrong password for a real user, any password for an unknown name (which
    pam_succeed_if refuses before any password is asked) and a name PAM is never asked about all take
    failed_login_min_seconds, within 50 ms at p50."""
    minimum = 0.5
    auth = HPCPAMAuthenticator(
        service=SERVICE, failed_login_min_seconds=minimum, login_failures_per_user=0, login_failures_per_address=0
    )
    raw = p50_times(5, [lambda: real(PW_USER, "wrong"), lambda: real("nosuchuser", "wrong")])
    padded = p50_times(
        7,
        [
            lambda: login(auth, PW_USER, "wrong"),
            lambda: login(auth, "nosuchuser", "wrong"),
            lambda: login(auth, "No Such User", "wrong"),
        ],
    )
    print(f"\nPAM alone, p50: existing {raw[0]:.4f} s, unknown {raw[1]:.4f} s")
    print(f"authenticator, p50: existing {padded[0]:.4f} s, unknown {padded[1]:.4f} s, invalid {padded[2]:.4f} s")
    assert all(minimum <= t < minimum + 0.1 for t in padded)
    assert max(padded) - min(padded) < 0.05


def test_an_error_in_pam_is_a_server_error_after_the_same_time(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> PamResult:
        raise OSError("libpam is gone")

    auth = authenticator(monkeypatch, failed_login_min_seconds=0.3)
    monkeypatch.setattr("jupyterhub_hpc.pam.pam_login", broken)
    start = time.monotonic()
    with pytest.raises(OSError):
        login(auth)
    assert time.monotonic() - start >= 0.3
