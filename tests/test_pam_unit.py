"""The authenticator's decisions with PAM replaced (the real PAM stack is exercised in Molecule): a wrong
password is a plain failure, a right password on an inactive account is a 403 that says what to check."""

from __future__ import annotations

import asyncio
from typing import Any

import pamela
import pytest
from hpc_pam import HPCPAMAuthenticator
from tornado import web


def authenticator(monkeypatch: pytest.MonkeyPatch, password_ok: bool, account_ok: bool) -> HPCPAMAuthenticator:
    def authenticate(username: str, password: str, **kwargs: Any) -> None:
        assert kwargs["check"] is False  # the account is checked separately, after the password
        if not password_ok:
            raise pamela.PAMError("Authentication failure", 7)

    def check_account(username: str, **kwargs: Any) -> None:
        if not account_ok:
            raise pamela.PAMError("Authentication failure", 7)

    monkeypatch.setattr(pamela, "authenticate", authenticate)
    monkeypatch.setattr(pamela, "check_account", check_account)
    return HPCPAMAuthenticator(cluster_name="Fir")


def login(auth: HPCPAMAuthenticator, password: str = "pw") -> Any:
    async def run() -> Any:
        return await auth.authenticate(None, {"username": "alice", "password": password})

    return asyncio.run(run())


def test_right_password_and_active_account_log_in(monkeypatch: pytest.MonkeyPatch) -> None:
    assert login(authenticator(monkeypatch, password_ok=True, account_ok=True)) == "alice"


def test_wrong_password_reveals_nothing_about_the_account(monkeypatch: pytest.MonkeyPatch) -> None:
    assert login(authenticator(monkeypatch, password_ok=False, account_ok=False)) is None


def test_inactive_account_is_told_what_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(web.HTTPError) as err:
        login(authenticator(monkeypatch, password_ok=True, account_ok=False))
    assert err.value.status_code == 403
    assert err.value.log_message == (
        "Your account or your access to Fir is currently inactive. Please check that: your account is active "
        "(it has been renewed); your access to Fir is enabled."
    )
