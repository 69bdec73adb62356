"""Login as an attacker sees it, through the proxy: a failed login takes the same time whether the name exists or
not, a name that keeps failing is refused (HTTP 429), failures are logged with the source address and an escaped
name. And erin's second factor (pam_oath, TOTP): her password alone or with a wrong code is refused, with the
current code she logs in, and a code cannot be used twice.

The scenario's hub must have pam_oath and the form's one-time password field: jupyterhub_pam_oath_users_file and
jupyterhub_pam_otp_field in host_vars/jhub-mol-hub.yml (roles/jupyterhub_pam/README.md).

Failures count per source address too, and every verifier logs in from the controller's one address: this file
fails 16 logins, the other verifiers a few more; the scenario raises jupyterhub_pam_max_failures_per_address so that
a second verify within jupyterhub_pam_failure_window (300 s) is not refused with 429.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import statistics
import struct
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hubclient import HubClient
from testinfra.host import Host

PAM_CONFIG = "/etc/jupyterhub/jupyterhub_config.d/20-pam.json"
PAM_SERVICE = "/etc/pam.d/jupyterhub-login"
# roles/demo_cluster/defaults/main.yml: erin's fixed demo TOTP secret (hex, as in pam_oath's users file).
ERIN_SECRET = "6572696e2d64656d6f2d746f74702d6b65792121"
STEP = 30


def totp(secret_hex: str, step: int) -> str:
    """RFC 6238 (HMAC-SHA1, 6 digits) for time step ``step`` (unix time // 30), as pam_oath's HOTP/T30/6."""
    mac = hmac.new(bytes.fromhex(secret_hex), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 10**6:06d}"


def post_login(base_url: str, user: str, password: str, otp: str | None = None) -> tuple[requests.Response, float]:
    """The login form as a browser submits it (with the optional one-time password field); the answer and the
    seconds the POST took."""
    client = HubClient(base_url, verify=False)
    client.session.get(client.url("/hub/login"), timeout=30).raise_for_status()
    data = {"username": user, "password": password, "_xsrf": client.session.cookies.get("_xsrf", "")}
    if otp is not None:
        data["otp"] = otp
    start = time.monotonic()
    resp = client.session.post(client.url("/hub/login?next="), data=data, allow_redirects=False, timeout=60)
    return resp, time.monotonic() - start


@pytest.fixture(scope="module")
def pam_config(hub: Host) -> dict[str, Any]:
    """The authenticator's settings as the role wrote them."""
    return dict(json.loads(hub.file(PAM_CONFIG).content_string)["HPCPAMAuthenticator"])


@pytest.fixture(scope="module")
def oath_users_file(hub: Host) -> str:
    service = hub.file(PAM_SERVICE).content_string
    found = re.search(r"^auth\b.*\spam_oath\.so\s+usersfile=(\S+)", service, re.MULTILINE)
    assert found, (
        f"no pam_oath in {PAM_SERVICE}: set jupyterhub_pam_oath_users_file (and jupyterhub_pam_otp_field: true) in "
        "molecule/default/host_vars/jhub-mol-hub.yml"
    )
    return found.group(1)


def unused_step(hub: Host, users_file: str) -> int:
    """A time step whose code pam_oath will take for erin: now, or after the last code she used (pam_oath refuses
    a replayed or earlier code; it takes the next steps within its window)."""
    now = int(time.time() // STEP)
    fields = hub.check_output(f"awk '$2 == \"erin\"' {users_file}").split()
    last_code = fields[5] if len(fields) > 5 else ""
    used = [s for s in range(now - 10, now + 6) if totp(ERIN_SECRET, s) == last_code]
    return max([now, *[s + 1 for s in used]])


def test_login_form_has_the_one_time_password_field(client: HubClient, pam_config: dict[str, Any]) -> None:
    assert pam_config["request_otp"] is True, "set jupyterhub_pam_otp_field: true for the scenario's hub"
    page = client.session.get(client.url("/hub/login"), timeout=30).content.decode()
    assert f'<label for="otp_input">{pam_config["otp_prompt"]}</label>' in page
    field = re.search(r'<input id="otp_input"([^>]*)/>', page, re.DOTALL)
    assert field
    for attribute in ('name="otp"', 'autocomplete="one-time-code"', 'maxlength="32"'):
        assert attribute in field.group(1)


def test_erins_secret_is_kept_by_the_hub(hub: Host, oath_users_file: str) -> None:
    users = hub.file(oath_users_file)
    assert (users.user, users.group, users.mode) == ("jupyterhub", "jupyterhub", 0o600)
    assert hub.file(oath_users_file.rsplit("/", 1)[0]).user == "jupyterhub"  # pam_oath writes beside it
    assert re.search(rf"^HOTP/T30/6\s+erin\s+-\s+{ERIN_SECRET}\b", users.content_string, re.MULTILINE)
    assert hub.package("libpam-oath").is_installed


def test_erin_needs_her_one_time_password(base_url: str, hub: Host, oath_users_file: str) -> None:
    step = unused_step(hub, oath_users_file)
    valid = {totp(ERIN_SECRET, s) for s in range(step - 6, step + 7)}
    wrong = next(code for code in (f"{n:06d}" for n in range(0, 10**6, 111111)) if code not in valid)

    for otp in (None, "", wrong):
        resp, _took = post_login(base_url, "erin", "erin-demo", otp)
        assert resp.status_code == 403, (otp, resp.status_code)
        assert "Invalid username or password" in resp.text

    code = totp(ERIN_SECRET, step)
    resp, _took = post_login(base_url, "erin", "erin-demo", code)
    assert resp.status_code == 302, resp.text[:500]
    assert hub.check_output(f"awk '$2 == \"erin\" {{print $6}}' {oath_users_file}") == code  # recorded as used

    replayed, _took = post_login(base_url, "erin", "erin-demo", code)
    assert replayed.status_code == 403  # the same code again: refused


def test_users_without_a_second_factor_ignore_the_field(base_url: str) -> None:
    resp, _took = post_login(base_url, "bob", "bob-demo", "")
    assert resp.status_code == 302


def test_failures_take_the_same_time_whether_the_user_exists_or_not(base_url: str, pam_config: dict[str, Any]) -> None:
    minimum = float(pam_config["failed_login_min_seconds"])
    ghost = f"ghost{uuid.uuid4().hex[:8]}"
    existing: list[float] = []
    unknown: list[float] = []
    for _i in range(3):  # interleaved; 3 stays under the per-name limit
        resp, took = post_login(base_url, "mallory", "not-her-password")
        assert resp.status_code == 403
        existing.append(took)
        resp, took = post_login(base_url, ghost, "whatever")
        assert resp.status_code == 403
        unknown.append(took)
    print(
        f"failed logins, p50: existing user {statistics.median(existing):.3f} s, "
        f"unknown {statistics.median(unknown):.3f} s (minimum {minimum} s)"
    )
    assert min(existing + unknown) >= minimum
    assert abs(statistics.median(existing) - statistics.median(unknown)) < 0.15
    # mallory's right password is refused like a wrong one (not in the allowed group), and counts as a failure.
    assert post_login(base_url, "mallory", "mallory-demo")[0].status_code == 403


def test_a_name_that_keeps_failing_is_refused(base_url: str, pam_config: dict[str, Any]) -> None:
    limit = int(pam_config["login_failures_per_user"])
    ghost = f"ghost{uuid.uuid4().hex[:8]}"
    for _i in range(limit):
        assert post_login(base_url, ghost, "guess")[0].status_code == 403
    resp, took = post_login(base_url, ghost, "guess")
    assert resp.status_code == 429
    assert "Too many failed logins. Please wait" in resp.text
    assert took < float(pam_config["failed_login_min_seconds"])  # refused at once
    # Other names from the same address still log in.
    assert post_login(base_url, "bob", "bob-demo")[0].status_code == 302


def test_failed_logins_are_logged_with_the_address_and_an_escaped_name(hub: Host, base_url: str) -> None:
    tag = uuid.uuid4().hex[:8]
    forged = "Logged in: root"  # the name stays under 64 characters: logged whole
    resp, _took = post_login(base_url, f"evil{tag}\n{forged}", "guess")
    assert resp.status_code == 403
    journal = hub.check_output("journalctl --no-pager -o cat -u jupyterhub")
    # Logged by jupyterhub_hpc/pam.py: the hub's log lines name the module ("... pam:<line>] ...").
    lines = [line for line in journal.splitlines() if f"evil{tag}" in line and " pam:" in line]
    assert lines, f"no failed login logged for evil{tag}"
    logged = re.search(r"Failed login for '([^']*)' from (\S+): (.*)$", lines[-1])
    assert logged and logged.group(1) == f"evil{tag}\\n{forged}"
    assert logged.group(3) == "not a valid user name"
    # The source address is the client's (the controller, from the proxy's X-Forwarded-For), not the proxy's.
    hub_ip = base_url.removeprefix("https://").split(":")[0]
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", logged.group(2)) and logged.group(2) not in (hub_ip, "127.0.0.1")
    assert not any(line.startswith(forged) for line in journal.splitlines())


def post_token(base_url: str, user: str, password: str) -> tuple[requests.Response, float]:
    """The token API's password login (JupyterHub 6: POST /hub/api/users/<name>/tokens with {"auth": {...}}, no
    cookie, no XSRF token); the answer and the seconds the POST took."""
    client = HubClient(base_url, verify=False)
    start = time.monotonic()
    resp = client.session.post(
        client.url(f"/hub/api/users/{user}/tokens"),
        json={"auth": {"username": user, "password": password}, "note": "timing"},
        timeout=60,
    )
    return resp, time.monotonic() - start


@pytest.fixture
def outsiders(hub: Host) -> Iterator[list[tuple[str, str]]]:
    """Three accounts PAM accepts but the hub does not allow (not in jupyterhub_allowed_groups), made for this test
    and removed after it: a right password of one is a failure for its name like a wrong one (5 in 5 minutes), so
    each takes 4 attempts and a second verify starts afresh."""
    tag = uuid.uuid4().hex[:6]
    accounts = [(f"outsider{tag}{i}", f"outsider-{tag}-{i}-pw") for i in range(3)]
    try:
        for name, password in accounts:
            hub.check_output(f"useradd --no-create-home --shell /usr/sbin/nologin {name}")
            hub.check_output(f"echo '{name}:{password}' | chpasswd")
            assert "hubusers" not in hub.check_output(f"id -nG {name}").split()
        yield accounts
    finally:
        for name, _password in accounts:
            hub.run(f"userdel {name}")


def test_a_not_allowed_accounts_right_password_fails_in_the_same_time(
    base_url: str, pam_config: dict[str, Any], outsiders: list[tuple[str, str]]
) -> None:
    """An account outside the allowed groups gets the same answer, after the same time, with its right password as
    with a wrong one, through the login form and through the token API (issue 22: 0.76 s against 2.01 s before)."""
    minimum = float(pam_config.get("failed_login_min_seconds", 2.0))
    for channel, attempt in (("login form", post_login), ("token API", post_token)):
        right: list[float] = []
        wrong: list[float] = []
        for name, password in outsiders:  # interleaved; one account per round (4 attempts each, under the limit)
            good, took = attempt(base_url, name, password)
            assert good.status_code == 403, (channel, "right", good.status_code, good.text[:200])
            right.append(took)
            bad, took = attempt(base_url, name, "not-the-password")
            assert bad.status_code == 403, (channel, "wrong", bad.status_code, bad.text[:200])
            wrong.append(took)
            if channel == "login form":
                assert "Invalid username or password" in good.text and "Invalid username or password" in bad.text
            else:
                assert good.json() == bad.json()
        print(
            f"{channel}, not-allowed account, p50: right password {statistics.median(right):.3f} s, "
            f"wrong {statistics.median(wrong):.3f} s (minimum {minimum} s)"
        )
        assert statistics.median(right) >= minimum and statistics.median(wrong) >= minimum, (channel, right, wrong)
        assert abs(statistics.median(right) - statistics.median(wrong)) < 0.25, (channel, right, wrong)
