"""PAMAuthenticator hardened for a public login page, which every user (and everyone else) may attack.

- An inactive account is told apart from a wrong password: JupyterHub's PAMAuthenticator answers "Invalid
  username or password" in both cases, so a user whose account expired keeps retyping a correct password. Here,
  if the password is right but PAM's account check refuses (expired, access withdrawn), the login page answers
  403 with what to check. A wrong password still gets the plain login error.
- Failed logins are throttled per user name and per source address: after ``login_failures_per_user`` (or
  ``login_failures_per_address``) failures within ``login_failure_window_seconds``, further attempts for that
  name (or from that address) are refused at once with HTTP 429 until the window passes. Both tables are
  bounded (``login_failure_table_size`` keys each, least recently failed evicted first). A successful login
  resets its name's count; the right password of an account the hub does not allow (blocked, or outside the
  allowed users and groups) is a failure like any other, counted and not resetting anything.
- No user enumeration, and no password oracle, by timing: every failed attempt takes ``failed_login_min_seconds``
  from the start of ``get_authenticated_user`` (the login form's and the token API's way in), whatever failed: a
  wrong password, an unknown name, the right password of an account not allowed (JupyterHub's own check, after
  ``authenticate``), an inactive account (403), an error (500). Only the throttle's 429, decided before PAM on
  counts alone, answers at once. PAM's own failure delay (pam_unix's 2 s +- 25 %, pam_faildelay) is replaced by
  this one, which is exact and waited on the event loop instead of in one of the executor's threads.
- The inactive-account page is shown only to an account the hub allows: for any other, the plain login error.
- Failed logins are logged with the source address and the name escaped and truncated (a hostile name cannot
  forge log lines).
- PAM runs with its own conversation (built on pamela's ctypes primitives), which can answer a second factor:
  echo-off prompts get the password, then the form's one-time password (JupyterHub's ``request_otp`` field);
  echo-on prompts get the user name; PAM's info and error messages are collected. Input is bounded and the user
  name checked against ``login_username_pattern`` (the site's one user-name rule, ``jupyterhub_hpc.names``) before
  PAM is touched.
- A user name is the account's as the system spells it: JupyterHub's default normalization lowercases it, which would
  make ``Alice.Smith`` (who logged in with PAM) the hub user ``alice.smith``, an account that does not exist (or is
  someone else's). Here only ``username_map`` applies (and upstream's ``pam_normalize_username`` when it is on).
- Logging out is the spawner's side (``jupyterhub_hpc.logout``, installed by the spawner's module): it ends Slurm jobs
  whatever the authenticator.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import re
import time
from collections import OrderedDict, deque
from collections.abc import Collection, Sequence
from contextvars import ContextVar
from ctypes import CFUNCTYPE, POINTER, c_char_p, c_int, c_uint, c_void_p, cast, pointer, sizeof
from dataclasses import dataclass
from typing import Any

import pamela
from jupyterhub.auth import PAMAuthenticator
from jupyterhub.handlers.login import LoginHandler
from jupyterhub.utils import maybe_future
from tornado import web
from traitlets import Float, Integer, List, Unicode

from jupyterhub_hpc import i18n
from jupyterhub_hpc.i18n import N_
from jupyterhub_hpc.i18n import gettext as _
from jupyterhub_hpc.names import DEFAULT_USERNAME_PATTERN, MAX_USERNAME_CHARS, username_ok

# Linux-PAM's values (security/_pam_types.h); pamela names few of them (and untyped).
PAM_SUCCESS = 0
PAM_BUF_ERR = 5
PAM_CONV_ERR = 19
PAM_FAIL_DELAY = 10  # pam_set_item: the application's own failure-delay function
PAM_DISALLOW_NULL_AUTHTOK = 0x0001  # an account with an empty password does not log in ("nullok" or not)
PAM_MAX_NUM_MSG = 32

# Input bounds, checked before PAM is touched (the user name's: jupyterhub_hpc.names.MAX_USERNAME_CHARS).
MAX_PASSWORD_BYTES = 1024
MAX_OTP_CHARS = 32
# The conversation: prompts answered per login (password, one-time password, and a couple of echo-on prompts),
# PAM messages kept for the log, and their length there.
MAX_PROMPTS = 4
MAX_PAM_MESSAGES = 8
MAX_LOGGED_MESSAGE = 200

_OTP_RE = re.compile(r"[!-~]*")  # printable ASCII, no spaces


def loggable(text: str, limit: int = MAX_USERNAME_CHARS) -> str:
    """``text`` safe for one log line: truncated, quoted, every non-ASCII or control character escaped."""
    shown = ascii(text[:limit])
    return shown if len(text) <= limit else f"{shown}...({len(text)} chars)"


# -- PAM ---------------------------------------------------------------------------------------------------------
_FREE = pamela.LIBC["free"]  # its own function object: pamela's LIBC.free keeps its (default) signature
_FREE.argtypes = [c_void_p]
_FREE.restype = None

_FAIL_DELAY_FUNC = CFUNCTYPE(None, c_int, c_uint, c_void_p)


def _skip_fail_delay(status: int, usec: int, appdata: int | None) -> None:
    """PAM's failure delay, replaced: the authenticator pads every failed login itself (see the module doc)."""


_no_fail_delay = _FAIL_DELAY_FUNC(_skip_fail_delay)  # module-level: PAM keeps only a C pointer to it


@dataclass(frozen=True)
class PamResult:
    """What one PAM transaction said: ``code`` is PAM_SUCCESS (0) or the failing step's code."""

    code: int
    step: str  # "start", "authenticate" or "account": the step that answered ``code``
    error: str  # pam_strerror(code)
    messages: tuple[str, ...] = ()  # PAM's info and error messages, escaped (pam_unix's warnings, MFA hints)
    prompts: tuple[str, ...] = ()  # the prompts PAM asked, escaped

    @property
    def authenticated(self) -> bool:
        """The credentials were right (whatever the account check said)."""
        return self.step == "account" or (self.step == "authenticate" and self.code == 0)

    @property
    def ok(self) -> bool:
        return self.code == 0


class Conversation:
    """PAM's conversation for one login, from the form's fields only.

    Echo-off prompts are answered in order from ``secrets`` (the password, then the one-time password; "" when the
    form had none), echo-on prompts with the user name; info and error messages are collected. More than
    ``MAX_PROMPTS`` prompts, or more echo-off prompts than secrets, end the conversation (PAM_CONV_ERR).
    """

    def __init__(self, username: bytes, secrets: Sequence[bytes]) -> None:
        self.username = username
        self.secrets = list(secrets)
        self.answered = 0
        self.prompts: list[str] = []
        self.messages: list[str] = []
        # Kept here: PAM holds only a C pointer to it while the transaction lasts.
        self.callback = pamela.CONV_FUNC(self._converse)

    def _converse(self, n_messages: int, messages: Any, p_response: Any, app_data: Any) -> int:
        try:
            return self._answer(n_messages, messages, p_response)
        except Exception:  # never across the C boundary: ctypes would return 0, PAM_SUCCESS
            return PAM_CONV_ERR

    def _answer(self, n_messages: int, messages: Any, p_response: Any) -> int:
        if not 0 < n_messages <= PAM_MAX_NUM_MSG:
            return PAM_CONV_ERR
        answers: list[bytes | None] = []
        for i in range(n_messages):
            message = messages[i].contents
            style = message.msg_style
            text = (cast(message.msg, c_char_p).value or b"").decode("utf-8", "replace")
            if style in (pamela.PAM_PROMPT_ECHO_OFF, pamela.PAM_PROMPT_ECHO_ON):
                self.prompts.append(loggable(text, MAX_LOGGED_MESSAGE))
                if len(self.prompts) > MAX_PROMPTS:
                    return PAM_CONV_ERR
                if style == pamela.PAM_PROMPT_ECHO_ON:
                    answers.append(self.username)
                elif self.answered < len(self.secrets):
                    answers.append(self.secrets[self.answered])
                    self.answered += 1
                else:
                    return PAM_CONV_ERR
            elif style in (pamela.PAM_ERROR_MSG, pamela.PAM_TEXT_INFO):
                if len(self.messages) < MAX_PAM_MESSAGES:
                    self.messages.append(loggable(text, MAX_LOGGED_MESSAGE))
                answers.append(None)
            else:
                return PAM_CONV_ERR
        # Allocated only now, with libc (PAM frees the responses and their strings): nothing to free above.
        address = pamela.CALLOC(n_messages, sizeof(pamela.PamResponse))
        if not address:
            return PAM_BUF_ERR
        responses = cast(address, POINTER(pamela.PamResponse))
        for i, answer in enumerate(answers):
            if answer is None:
                continue
            copy = pamela.STRDUP(answer)
            if not copy:
                for j in range(i):
                    if responses[j].resp:
                        _FREE(cast(responses[j].resp, c_void_p))
                _FREE(address)
                return PAM_BUF_ERR
            responses[i].resp = copy
            responses[i].resp_retcode = 0
        p_response[0] = responses
        return PAM_SUCCESS


def pam_login(
    username: str,
    password: str,
    otp: str = "",
    *,
    service: str,
    encoding: str = "utf8",
    rhost: str = "",
    check_account: bool = True,
) -> PamResult:
    """One PAM transaction for a login: authenticate (with the password and one-time password through a
    bounded conversation), then the account check on the same handle. Blocks (PAM modules may do network I/O):
    call it from a thread. PAM's failure delay is switched off (the caller pads failures).

    The caller validates the input first (``HPCPAMAuthenticator.input_problem``).
    """
    conversation = Conversation(username.encode(encoding), [password.encode(encoding), otp.encode(encoding)])
    conv = pamela.PamConv(conversation.callback, None)
    handle = pamela.PamHandle()
    code = pamela.PAM_START(service.encode(encoding), username.encode(encoding), pointer(conv), pointer(handle))
    if code != PAM_SUCCESS:
        pamela.PAM_END(handle, code)
        return PamResult(code, "start", pamela.pam_strerror(handle, code))
    step = "authenticate"
    try:
        code = pamela.PAM_SET_ITEM(handle, PAM_FAIL_DELAY, cast(_no_fail_delay, c_char_p))
        if code == PAM_SUCCESS and rhost:
            # Modules log it (pam_unix: "rhost=..."); pam_access and the like can decide on it.
            code = pamela.PAM_SET_ITEM(handle, pamela.PAM_RHOST, rhost.encode(encoding))
        if code == PAM_SUCCESS:
            code = pamela.PAM_AUTHENTICATE(handle, PAM_DISALLOW_NULL_AUTHTOK)
        if code == PAM_SUCCESS and check_account:
            step = "account"
            code = pamela.PAM_ACCT_MGMT(handle, PAM_DISALLOW_NULL_AUTHTOK)
        if code == PAM_SUCCESS:
            # As pamela.authenticate does (Kerberos and the like); its answer does not matter here.
            pamela.PAM_SETCRED(handle, pamela.PAM_REINITIALIZE_CRED)
        error = pamela.pam_strerror(handle, code)
    finally:
        pamela.PAM_END(handle, code)
    return PamResult(code, step, error, tuple(conversation.messages), tuple(conversation.prompts))


# -- where an attempt comes from -------------------------------------------------------------------------------
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(request: Any, trusted_proxies: Collection[str] = ()) -> str:
    """The address a request comes from, which the client cannot choose.

    JupyterHub's ``request.remote_ip`` (tornado's xheaders) takes a client's own ``X-Real-Ip`` header as is,
    and believes ``X-Forwarded-For`` from anyone, including a user's code on a compute node talking to the hub's
    port directly. Here the peer of the TCP connection is the answer, unless it is a proxy: loopback, this host
    (the proxy runs beside the hub and reaches it at the hub's address), or listed in ``trusted_proxies``. From a
    proxy, the answer is the last X-Forwarded-For entry that is not a trusted proxy itself (JupyterHub's
    ``trusted_downstream_ips`` are skipped, as tornado does): the proxy appended it, whatever the client sent.
    """
    context = getattr(getattr(request, "connection", None), "context", None)
    address = getattr(context, "address", None)
    peer = address[0] if isinstance(address, tuple) and address and isinstance(address[0], str) else ""
    peer_ip = _ip(peer) or _ip(str(getattr(request, "remote_ip", "") or ""))
    if peer_ip is None:
        return "unknown"
    if not (peer_ip.is_loopback or str(peer_ip) in trusted_proxies or _is_local(request, peer_ip)):
        return str(peer_ip)
    skip = set(trusted_proxies) | set(getattr(context, "trusted_downstream", None) or ())
    for entry in reversed(request.headers.get("X-Forwarded-For", "").split(",")):
        hop = _ip(entry)
        if hop is None:
            break  # garbage where the proxy's entry should be: not an address to believe
        if str(hop) not in skip and not hop.is_loopback:
            return str(hop)
    return str(peer_ip)


def _is_local(request: Any, peer: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """The connection's two ends have the same address: it comes from this host (the proxy, usually)."""
    try:
        local = request.connection.stream.socket.getsockname()[0]
    except (AttributeError, OSError, IndexError, TypeError):
        return False
    return _ip(str(local)) == peer


def address_key(address: str) -> str:
    """The throttle's key for an address: IPv6 by /64 (one subscriber's usual allocation), IPv4 as is."""
    ip = _ip(address)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip) if ip is not None else address


# -- throttling ------------------------------------------------------------------------------------------------
class FailureLog:
    """Recent failures per key (a user name or an address), at most ``size`` keys: the least recently failed key
    goes first, so a flood of names cannot grow it. Used from the event loop only (no lock)."""

    def __init__(self, limit: int, window: float, size: int) -> None:
        self.limit = limit
        self.window = window
        self.size = size
        self._table: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._table)

    def _expire(self, now: float) -> None:
        # In order of their last failure: the first ones are the stalest.
        while self._table:
            times = next(iter(self._table.values()))
            if times and times[-1] > now - self.window:
                break
            self._table.popitem(last=False)

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        self._expire(now)
        times = self._table.get(key)
        if self.limit <= 0 or not times or len(times) < self.limit:
            return 0.0
        # The oldest of the last `limit` failures leaves the window; never more than the window (float rounding of
        # times[0] + window - now can exceed it by an ulp).
        return min(self.window, max(0.0, times[0] + self.window - now))

    def add(self, key: str, now: float) -> None:
        if self.limit <= 0:
            return
        times = self._table.pop(key, None)
        if times is None or times.maxlen != self.limit:
            times = deque(times or (), maxlen=self.limit)
        times.append(now)
        self._table[key] = times
        while len(self._table) > self.size:
            self._table.popitem(last=False)

    def remove(self, key: str, when: float) -> None:
        """Forget one failure (an attempt counted in advance that did not fail)."""
        times = self._table.get(key)
        if times is not None and when in times:
            times.remove(when)
            if not times:
                del self._table[key]

    def clear(self, key: str) -> None:
        self._table.pop(key, None)


@dataclass(frozen=True)
class Attempt:
    """A login attempt, counted as a failure from its start (so parallel attempts cannot pass the limit)."""

    name: str | None  # None: not a valid user name (counted for the address only)
    address: str
    started: float


@dataclass
class LoginCall:
    """One call of ``get_authenticated_user``, shared with the ``authenticate`` it makes (through ``_LOGIN_CALL``):
    when it started, and the attempt whose credentials PAM accepted, counted as a failure until JupyterHub's allow
    checks pass."""

    started: float
    username: str = ""
    address: str = "unknown"
    accepted: Attempt | None = None


# A context variable: JupyterHub runs authenticate in a task of its own, which sees the caller's (copied) context.
_LOGIN_CALL: ContextVar[LoginCall | None] = ContextVar("jupyterhub_hpc_login_call", default=None)


# -- the authenticator -----------------------------------------------------------------------------------------
# Each request's pages in its browser's language (i18n.py: a per-request context variable).
i18n.install()

# JupyterHub's own login error (LoginHandler), in the catalog so that the login page shows it translated.
JUPYTERHUB_LOGIN_ERRORS = (N_("Invalid username or password"), N_("Login form invalid or expired. Try again."))


class HPCLoginHandler(LoginHandler):  # type: ignore[misc]
    """JupyterHub's login page, whose error is shown in the request's language: JupyterHub's own error through the
    catalog, the authenticator's (inactive account, throttling) already translated where they are raised. The error
    stays a plain string, escaped by the template."""

    def _render(self, login_error: str | None = None, **kwargs: Any) -> Any:
        if isinstance(login_error, str) and login_error:
            login_error = _(login_error)
        return super()._render(login_error=login_error, **kwargs)


class HPCPAMAuthenticator(PAMAuthenticator):  # type: ignore[misc]
    cluster_name = Unicode("this cluster", help="The cluster's name, as users know it.").tag(config=True)

    account_checks = List(
        [
            N_("your account is active (it has been renewed);"),
            N_("your access to {cluster} is enabled."),
        ],
        help="What an inactive user should check, in order ({cluster} is cluster_name); plain text.",
    ).tag(config=True)

    failed_login_min_seconds = Float(
        2.0,
        help="Every failed login takes at least this long from its start, whether the user exists or not (no "
        "enumeration by timing). Replaces PAM's own failure delay. Keep it above PAM's slowest failure.",
    ).tag(config=True)

    login_failures_per_user = Integer(
        5, help="Failed logins for one user name within the window before that name is refused; 0: no limit."
    ).tag(config=True)

    login_failures_per_address = Integer(
        30,
        help="Failed logins from one address (IPv6: one /64) within the window before it is refused; 0: no "
        "limit. Users behind one NAT share it.",
    ).tag(config=True)

    login_failure_window_seconds = Float(
        300.0, help="How long a failed login counts, and how long at most a refused name or address waits."
    ).tag(config=True)

    login_failure_table_size = Integer(
        10000, help="Names, and addresses, remembered at most (the least recently failed are forgotten first)."
    ).tag(config=True)

    login_username_pattern = Unicode(
        DEFAULT_USERNAME_PATTERN,
        help=f"What a user name must match entirely before PAM is asked: the site's one user-name rule, the job "
        f"ledger's too (jupyterhub_hpc.names). Whatever it says, a name has at most {MAX_USERNAME_CHARS} characters "
        "of A-Z a-z 0-9 _ . @ -, the first a letter, digit or _.",
    ).tag(config=True)

    trusted_proxy_ips = List(
        Unicode(),
        help="Proxies, besides loopback and this host, whose X-Forwarded-For tells a login's source address.",
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._names: FailureLog | None = None
        self._addresses: FailureLog | None = None
        self._warned_slow_pam = False

    def get_handlers(self, app: Any) -> list[tuple[str, type[Any]]]:
        # Ahead of JupyterHub's own login (the logout is the spawner's: jupyterhub_hpc.logout).
        return [("/login", HPCLoginHandler)]

    # -- messages ----------------------------------------------------------------------------------------------
    def inactive_message(self) -> str:
        # The default checks (the role's too) are in the catalog; a site's own text has none and is shown as written.
        checks = " ".join(_(item).format(cluster=self.cluster_name) for item in self.account_checks)
        return _("Your account or your access to {cluster} is currently inactive. Please check that: {checks}").format(
            cluster=self.cluster_name, checks=checks
        )

    @staticmethod
    def throttled_message(seconds: float) -> str:
        minutes = math.ceil(seconds / 60)
        if seconds > 60:
            wait = _("1 minute") if minutes == 1 else _("{count} minutes").format(count=minutes)
        else:
            wait = _("{count} seconds").format(count=math.ceil(seconds))
        return _("Too many failed logins. Please wait {wait} and try again.").format(wait=wait)

    # -- throttling --------------------------------------------------------------------------------------------
    @property
    def failures_by_name(self) -> FailureLog:
        if self._names is None:
            self._names = FailureLog(
                self.login_failures_per_user, self.login_failure_window_seconds, self.login_failure_table_size
            )
        return self._names

    @property
    def failures_by_address(self) -> FailureLog:
        if self._addresses is None:
            self._addresses = FailureLog(
                self.login_failures_per_address, self.login_failure_window_seconds, self.login_failure_table_size
            )
        return self._addresses

    def valid_username(self, username: str) -> bool:
        return username_ok(username, self.login_username_pattern)

    def normalize_username(self, username: str) -> str:
        """The name as typed, through ``username_map``: no lowercasing (JupyterHub's default), since a system's
        account names are case-sensitive (``Alice.Smith`` is not ``alice.smith``). With ``pam_normalize_username``
        on, upstream's round trip through the passwd database (the system's own spelling)."""
        if self.pam_normalize_username:
            return str(super().normalize_username(username))
        return str(self.username_map.get(username, username))

    def input_problem(self, username: str, password: str, otp: str) -> str:
        """Why the form's fields are not worth asking PAM about ("" if they are)."""
        if not self.valid_username(username):
            return "not a valid user name"
        if not password:
            return "empty password"
        try:
            size = len(password.encode(self.encoding))
            otp.encode(self.encoding)
        except UnicodeError:
            return "not encodable"
        if size > MAX_PASSWORD_BYTES or "\0" in password:
            return "password too long or with a NUL"
        if len(otp) > MAX_OTP_CHARS or not _OTP_RE.fullmatch(otp):
            return "one-time password too long or not printable ASCII"
        return ""

    def _begin(self, username: str, address: str, now: float) -> Attempt:
        """Refuse a throttled name or address (429), else count the attempt as a failure until it succeeds."""
        name = username if self.valid_username(username) else None
        key = address_key(address)
        for table, which, value in ((self.failures_by_name, "user", name), (self.failures_by_address, "address", key)):
            wait = table.retry_after(value, now) if value is not None else 0.0
            if wait > 0:
                self.log.warning(
                    "Login refused for %s from %s: too many failures for this %s (%.0f s to wait)",
                    loggable(username),
                    address,
                    which,
                    wait,
                )
                raise web.HTTPError(429, self.throttled_message(wait), reason="Too Many Requests")
        if name is not None:
            self.failures_by_name.add(name, now)
        self.failures_by_address.add(key, now)
        return Attempt(name, key, now)

    def _succeeded(self, attempt: Attempt) -> None:
        if attempt.name is not None:
            self.failures_by_name.clear(attempt.name)
        self.failures_by_address.remove(attempt.address, attempt.started)

    async def _fail(self, attempt: Attempt, username: str, address: str, why: str) -> None:
        """Log the failure, then wait until the attempt has taken failed_login_min_seconds."""
        self.log.warning("Failed login for %s from %s: %s", loggable(username), address, why)
        await self._pad(attempt.started)

    async def _pad(self, started: float) -> None:
        """Wait until failed_login_min_seconds have passed since ``started`` (warn once if they already have)."""
        elapsed = time.monotonic() - started
        if 0 < self.failed_login_min_seconds < elapsed and not self._warned_slow_pam:
            self._warned_slow_pam = True
            self.log.warning(
                "A failed login took %.2f s, more than failed_login_min_seconds (%.2f s): raise it, or failures' "
                "times may tell existing accounts apart",
                elapsed,
                self.failed_login_min_seconds,
            )
        await asyncio.sleep(max(0.0, self.failed_login_min_seconds - elapsed))

    async def _allowed(self, username: str) -> bool:
        """Whether JupyterHub's checks after ``authenticate`` would let ``username`` in (the blocked users, then the
        allowed users and groups), as ``get_authenticated_user`` runs them."""
        name = self.normalize_username(username)
        if not self.validate_username(name):
            return False
        model = {"name": name, "auth_state": None, "user_info": None, "admin": None}
        if not await maybe_future(self.check_blocked_users(name, model)):
            return False
        return bool(self.allow_all or await maybe_future(self.check_allowed(name, model)))

    # -- login -------------------------------------------------------------------------------------------------
    async def get_authenticated_user(self, handler: Any, data: Any) -> dict[str, Any] | None:
        """JupyterHub's, timed and counted as one attempt: the login form and the token API's password both come
        here, and JupyterHub refuses a blocked or not allowed account only after ``authenticate`` said yes. Any
        failure (None, an HTTP error, an exception) takes failed_login_min_seconds from the start, as the
        throttle's refusal (429) does not; a success is not delayed, and only a success resets the name's count."""
        call = LoginCall(time.monotonic())
        token = _LOGIN_CALL.set(call)
        try:
            authenticated: dict[str, Any] | None = await super().get_authenticated_user(handler, data)
        except web.HTTPError as err:
            if err.status_code != 429:  # 429: refused before PAM on the counts alone, at once
                await self._pad(call.started)
            raise
        except Exception:
            await self._pad(call.started)
            raise
        finally:
            _LOGIN_CALL.reset(token)
        if authenticated is None:
            if call.accepted is not None:
                # JupyterHub logged why ("User ... blocked", "... not allowed"); its log line has no address.
                self.log.warning(
                    "Failed login for %s from %s: right credentials, but not allowed to use the hub",
                    loggable(call.username),
                    call.address,
                )
            await self._pad(call.started)  # the attempt stays counted as a failure
            return None
        if call.accepted is not None:
            self._succeeded(call.accepted)
        return authenticated

    async def authenticate(self, handler: Any, data: Any) -> str | None:
        call = _LOGIN_CALL.get()
        started = call.started if call is not None else time.monotonic()
        fields = data if isinstance(data, dict) else {}  # the token API passes its body's "auth", whatever it is
        username = str(fields.get("username", ""))
        password = str(fields.get("password", ""))
        otp = str(fields.get("otp", "")).strip()
        request = getattr(handler, "request", None)
        address = client_address(request, self.trusted_proxy_ips) if request is not None else "unknown"
        if call is not None:
            call.username, call.address = username, address

        attempt = self._begin(username, address, started)  # raises 429 when throttled
        problem = self.input_problem(username, password, otp)
        if problem:
            await self._fail(attempt, username, address, problem)
            return None

        # PAM calls block: in the authenticator's thread pool, as upstream.
        try:
            result: PamResult = await asyncio.wrap_future(
                self.executor.submit(
                    pam_login,
                    username,
                    password,
                    otp,
                    service=self.service,
                    encoding=self.encoding,
                    rhost=address if address != "unknown" else "",
                    check_account=self.check_account,
                )
            )
        except Exception:
            # A server error (500), still after the same time as a failure.
            await self._fail(attempt, username, address, "error in the PAM transaction")
            raise
        if not result.authenticated:
            # A wrong password or one-time password, an unknown user, a locked password (pam_unix cannot tell):
            # the plain login error, nothing revealed about the account.
            details = "; ".join(result.messages)
            await self._fail(attempt, username, address, result.error + (f" ({details})" if details else ""))
            return None
        if not result.ok:
            if not await self._allowed(username):
                # The inactive page would tell the right password of an account the hub refuses anyway.
                await self._fail(attempt, username, address, f"{result.error}, and not allowed to use the hub")
                return None
            self._succeeded(attempt)
            self.log.warning("PAM account check failed for %s from %s: %s", loggable(username), address, result.error)
            await self._pad(started)  # as slow as a failure: get_authenticated_user would pad it anyway
            # JupyterHub shows a 403's message on the login page, as the login error.
            raise web.HTTPError(403, self.inactive_message(), reason="Account inactive")
        if call is not None:
            call.accepted = attempt  # a failure still, until JupyterHub's allow checks pass (get_authenticated_user)
        else:
            self._succeeded(attempt)  # called on its own: nothing else decides
        return username
