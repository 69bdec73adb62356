"""A small JupyterHub client that behaves like a user's browser: login form (with _xsrf), the hub's REST API
with the token the user creates, the single-user server's API, and a kernel over its websocket.

Used by the Molecule verifiers, the benchmarks and the browser tests' set-up; depends only on requests and
websocket-client.
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests
import websocket


class HubError(RuntimeError):
    """The hub answered something a user would see as a failure."""


@dataclass
class HubClient:
    """One user's session with a hub at ``base_url`` (the proxy's public URL, e.g. http://10.0.0.2:8000)."""

    base_url: str
    verify: bool | str = True
    session: requests.Session = field(default_factory=requests.Session)
    user: str = ""
    token: str = ""
    _server_root: str = ""

    def __post_init__(self) -> None:
        # Also for the pages tests fetch with the session directly. A CA bundle in the environment
        # (REQUESTS_CA_BUNDLE) would override the session's setting: not read when verify is set here.
        self.session.verify = self.verify
        if self.verify is not True:
            self.session.trust_env = False

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def server_url(self, path: str = "/") -> str:
        """A URL of the user's own server: under the hub's URL, or on the user's host name when the hub gives each
        user one (subdomain_host; the hub's model of a running server has its full URL then)."""
        root = self._server_root
        if not root:
            url = str(self.user_model().get("servers", {}).get("", {}).get("url") or "")
            root = url if "://" in url else self.url(url or f"/user/{self.user}/")
            if url:  # known only while the server exists; the same for the rest of the session
                self._server_root = root
        return root.rstrip("/") + path

    # -- login -------------------------------------------------------------------------------------------
    def login(self, user: str, password: str) -> requests.Response:
        """Submit the login form as a browser does; return the final response (raises nothing)."""
        page = self.session.get(self.url("/hub/login"), verify=self.verify, timeout=30)
        page.raise_for_status()
        xsrf = self.session.cookies.get("_xsrf", "")
        resp = self.session.post(
            self.url("/hub/login?next="),
            data={"username": user, "password": password, "_xsrf": xsrf},
            allow_redirects=False,
            verify=self.verify,
            timeout=60,
        )
        if resp.status_code == 302:
            self.user = user
        return resp

    @classmethod
    def fresh(cls, base_url: str, user: str, password: str, note: str, verify: bool | str = True) -> HubClient:
        """A logged-in user with a token and no server (one left by an earlier step or run is stopped)."""
        client = cls(base_url, verify=verify)
        resp = client.login(user, password)
        if resp.status_code != 302:
            raise HubError(f"login of {user} failed: {resp.status_code}")
        client.create_token(note)
        if client.user_model()["servers"]:
            client.stop_server()
        return client

    def logged_in(self) -> bool:
        return bool(self.user)

    def xsrf_headers(self) -> dict[str, str]:
        return {"X-XSRFToken": self.session.cookies.get("_xsrf") or ""}

    def create_token(self, note: str = "hubclient") -> str:
        """Create an API token for the logged-in user, through the hub's API with the login cookie."""
        resp = self.session.post(
            self.url(f"/hub/api/users/{self.user}/tokens"),
            json={"note": note, "expires_in": 3600},
            headers=self.xsrf_headers(),
            verify=self.verify,
            timeout=30,
        )
        if resp.status_code != 201:
            raise HubError(f"token creation failed: {resp.status_code} {resp.text[:300]}")
        self.token = str(resp.json()["token"])
        return self.token

    # -- hub API -----------------------------------------------------------------------------------------
    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        return self.session.request(
            method, self.url("/hub/api" + path), headers=headers, verify=self.verify, timeout=60, **kwargs
        )

    def user_model(self) -> dict[str, Any]:
        resp = self.api("GET", f"/users/{self.user}")
        resp.raise_for_status()
        return dict(resp.json())

    def start_server(self, options: dict[str, Any] | None = None) -> requests.Response:
        """Ask for the user's server (with ``options`` as user_options); returns the API's answer."""
        return self.api("POST", f"/users/{self.user}/server", json=options or {})

    def wait_until_ready(self, timeout: float = 300.0) -> float:
        """Wait until the server is ready; return the seconds it took. Raise with the hub's message on failure."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            model = self.user_model()
            server = model.get("servers", {}).get("", {})
            if server.get("ready"):
                return time.monotonic() - start
            if not server:
                raise HubError(f"server of {self.user} is gone: {self.last_spawn_message()}")
            time.sleep(0.25)
        raise HubError(f"server of {self.user} not ready after {timeout} s")

    def follow_spawn(self) -> tuple[bool, str]:
        """Follow the spawn's progress events as the spawn page does (one stream the hub pushes to, no polling)
        until it ends: (ready, last message)."""
        resp = self.api("GET", f"/users/{self.user}/server/progress", stream=True)
        message, ready = "", False
        try:
            for line in resp.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    event = json.loads(line[5:])
                    message = str(event.get("message", message))
                    if event.get("failed") or event.get("ready"):
                        ready = bool(event.get("ready"))
                        break
        finally:
            resp.close()
        return ready, message

    def last_spawn_message(self) -> str:
        """The last progress event of the current or last spawn (what the spawn page shows)."""
        return self.follow_spawn()[1]

    def stop_server(self, timeout: float = 60.0) -> None:
        resp = self.api("DELETE", f"/users/{self.user}/server")
        if resp.status_code not in (202, 204):
            raise HubError(f"stop failed: {resp.status_code} {resp.text[:300]}")
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if not self.user_model().get("servers", {}).get(""):
                return
            time.sleep(0.5)
        raise HubError(f"server of {self.user} still there {timeout} s after stop")

    # -- single-user server ------------------------------------------------------------------------------
    def server_api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        return self.session.request(
            method,
            self.server_url(f"/api{path}"),
            headers=headers,
            verify=self.verify,
            timeout=60,
            **kwargs,
        )

    def execute(self, code: str, kernel_name: str = "python3", timeout: float = 60.0) -> str:
        """Start a kernel, run ``code`` over the websocket, return its text/plain result; shut the kernel down."""
        resp = self.server_api("POST", "/kernels", json={"name": kernel_name})
        if resp.status_code != 201:
            raise HubError(f"kernel start failed: {resp.status_code} {resp.text[:300]}")
        kernel_id = resp.json()["id"]
        try:
            return self._execute_on(kernel_id, code, timeout)
        finally:
            self.server_api("DELETE", f"/kernels/{kernel_id}")

    def server_websocket(self, path: str, timeout: float = 60.0) -> websocket.WebSocket:
        """A websocket to a path of the user's own server (``/api/kernels/<id>/channels``, an app's ``/<app>/``),
        authenticated with the user's token."""
        ws_url = self.server_url(path).replace("http", "ws", 1)
        sslopt: dict[str, Any] = {}
        if isinstance(self.verify, str):
            sslopt = {"ca_certs": self.verify}
        elif self.verify is False:
            sslopt = {"cert_reqs": ssl.CERT_NONE}
        conn: websocket.WebSocket = websocket.create_connection(
            ws_url, header=[f"Authorization: token {self.token}"], timeout=timeout, sslopt=sslopt
        )
        return conn

    def _execute_on(self, kernel_id: str, code: str, timeout: float) -> str:
        conn = self.server_websocket(f"/api/kernels/{kernel_id}/channels", timeout)
        try:
            msg_id = uuid.uuid4().hex
            conn.send(
                json.dumps(
                    {
                        "header": {
                            "msg_id": msg_id,
                            "username": self.user,
                            "session": uuid.uuid4().hex,
                            "msg_type": "execute_request",
                            "version": "5.3",
                        },
                        "parent_header": {},
                        "metadata": {},
                        "content": {"code": code, "silent": False, "store_history": False},
                        "channel": "shell",
                    }
                )
            )
            deadline = time.monotonic() + timeout
            result = ""
            while time.monotonic() < deadline:
                msg = json.loads(conn.recv())
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = msg["msg_type"]
                if kind in ("execute_result", "display_data"):
                    result = str(msg["content"]["data"].get("text/plain", ""))
                elif kind == "stream":
                    result += str(msg["content"]["text"])
                elif kind == "error":
                    raise HubError(f"kernel error: {msg['content']['ename']}: {msg['content']['evalue']}")
                elif kind == "status" and msg["content"]["execution_state"] == "idle":
                    return result
            raise HubError(f"no result for {code!r} within {timeout} s")
        finally:
            conn.close()
