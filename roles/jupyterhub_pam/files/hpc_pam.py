"""PAMAuthenticator that tells an inactive account apart from a wrong password.

JupyterHub's PAMAuthenticator answers "Invalid username or password" in both cases, so a user whose account
expired keeps retyping a correct password. Here the password is checked first; if it is right but PAM's
account check refuses (expired, access withdrawn), the login page answers 403 (the seeds' "Authentication
error 403") with what to check. A wrong password still gets the plain login error: nothing is revealed about
an account to someone who does not know its password.
"""

from __future__ import annotations

from typing import Any

import pamela
from jupyterhub.auth import PAMAuthenticator
from tornado import web
from tornado.concurrent import run_on_executor
from traitlets import List, Unicode


class HPCPAMAuthenticator(PAMAuthenticator):  # type: ignore[misc]
    cluster_name = Unicode("this cluster", help="The cluster's name, as users know it.").tag(config=True)

    account_checks = List(
        [
            "your account is active (it has been renewed);",
            "your access to {cluster} is enabled.",
        ],
        help="What an inactive user should check, in order ({cluster} is cluster_name); plain text.",
    ).tag(config=True)

    def inactive_message(self) -> str:
        checks = " ".join(item.format(cluster=self.cluster_name) for item in self.account_checks)
        return f"Your account or your access to {self.cluster_name} is currently inactive. Please check that: {checks}"

    @run_on_executor  # type: ignore[misc]  # PAM calls block: in the authenticator's thread pool, as upstream
    def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
        username = data["username"]
        try:
            pamela.authenticate(username, data["password"], service=self.service, encoding=self.encoding, check=False)
        except pamela.PAMError as err:
            # A wrong password (or a locked one, which pam_unix cannot tell apart): the plain login error,
            # nothing revealed about the account.
            self.log.warning("PAM authentication failed for %r: %s", username[:32], _reason(err))
            return None
        if self.check_account:
            try:
                pamela.check_account(username, service=self.service, encoding=self.encoding)
            except pamela.PAMError as err:
                self.log.warning("PAM account check failed for %s: %s", username, _reason(err))
                # JupyterHub shows a 403's message on the login page, as the login error.
                raise web.HTTPError(403, self.inactive_message(), reason="Account inactive") from err
        return str(username)


def _reason(err: Exception) -> str:
    return str(getattr(err, "message", "") or err)
