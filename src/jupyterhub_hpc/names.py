"""User names: one rule, the site's, for the login, the job ledger and the sudo rule.

A user name goes to a shell (the spawner's commands run by ``/bin/sh``, with the name after sudo's ``-u`` and in
squeue's ``--user=``), to sudo (its runas list), to Slurm (the job's user, sacctmgr's associations), into file names
(the job output's ``%u``) and into the hub's URLs and users' host names. A site says which names its accounts have
with one regular expression, the inventory's ``jupyterhub_username_pattern``: the roles hand it to the authenticator
(``HPCPAMAuthenticator.login_username_pattern``) and to the hub's services (``HubServices.username_pattern``, for the
job ledger), and check the sudo rule's users against it. ``username_ok`` is the one check of a name against a
pattern; ``check_username_pattern`` the one check of a pattern.

Whatever a pattern says, a name is refused unless it has at most ``MAX_USERNAME_CHARS`` characters, all of
``A-Z a-z 0-9 _ . @ -``, the first a letter, digit or ``_`` (``SAFE_USERNAME``): no whitespace or control character,
nothing a shell expands or splits on (quotes, ``$``, ``;``, ``|``, ``&``, ``*``, ``?``, ``~``, a backslash), nothing
sudoers reads as syntax (``%group``, ``+netgroup``, ``#uid``, ``!``, ``,``, ``:``, ``=``), no ``,`` (Slurm's
lists), no ``%`` (Slurm's file-name patterns), no ``/``, no leading ``-`` (an option) or ``.``. Such a name is one
shell word as it is (``shlex.quote`` leaves it alone): a command with the name quoted or not is the same command.

``DEFAULT_USERNAME_PATTERN`` (the role's default too) accepts, within that, the names sites have: what ``useradd``
makes (Debian's, and upstream shadow's with or without ``--badname``: capitals, dots, a leading digit) and SSSD's
fully qualified names (``name@domain``, one ``@``), never a name of digits only (a uid to Slurm and many tools).
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "DEFAULT_USERNAME_PATTERN",
    "MAX_USERNAME_CHARS",
    "SAFE_USERNAME",
    "UsernamePatternError",
    "check_username_pattern",
    "refused_usernames",
    "subdomain_hook",
    "username_ok",
]

#: The longest user name accepted, whatever the pattern (SSSD's ``firstname.lastname@ad.example.org`` fits).
MAX_USERNAME_CHARS = 64

#: What every accepted name is, whatever the site's pattern says (the floor above, without the length).
SAFE_USERNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]*", re.ASCII)

#: The site's pattern unless it sets its own (roles/jupyterhub/defaults: jupyterhub_username_pattern is this string).
DEFAULT_USERNAME_PATTERN = r"(?![0-9]+(@|$))[A-Za-z0-9_][A-Za-z0-9_.-]*(@[A-Za-z0-9_][A-Za-z0-9_.-]*)?"

# Names no site's pattern may accept: a pattern that does says the site has names the hub would refuse anyway (the
# floor above), and is refused with the first of them as the example. (The length is the hub's bound, not the
# pattern's: a pattern need not say it.)
HOSTILE_USERNAMES = (
    "",
    "alice bob",
    "alice\tbob",
    "alice\n",
    "-alice",
    ".alice",
    "alice;id",
    "alice$",
    "alice$(id)",
    "alice`id`",
    "alice'",
    'alice"',
    "alice\\",
    "alice:x",
    "alice,bob",
    "alice/x",
    "%alice",
    "!alice",
    "#0",
    "+alice",
    "alice=x",
    "alice*",
    "~alice",
    "alice\x00",
    "alicé",
)


class UsernamePatternError(ValueError):
    """A user-name pattern that is no regular expression, or accepts names no site should have."""


def _compiled(pattern: str | re.Pattern[str]) -> re.Pattern[str]:
    return pattern if isinstance(pattern, re.Pattern) else re.compile(pattern)


def username_ok(name: object, pattern: str | re.Pattern[str] = DEFAULT_USERNAME_PATTERN) -> bool:
    """Whether ``name`` is a user name by ``pattern`` (matched entirely) and the floor: a string of at most
    ``MAX_USERNAME_CHARS`` characters of ``SAFE_USERNAME``. An invalid pattern raises ``re.error``."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= MAX_USERNAME_CHARS
        and SAFE_USERNAME.fullmatch(name) is not None
        and _compiled(pattern).fullmatch(name) is not None
    )


def check_username_pattern(pattern: object, path: str = "jupyterhub_username_pattern") -> str:
    """``pattern`` if it is a site's user-name pattern: a non-empty string that compiles as a Python regular expression
    and accepts none of ``HOSTILE_USERNAMES``; else ``UsernamePatternError`` naming ``path``, the value and why."""
    if not isinstance(pattern, str) or not pattern:
        raise UsernamePatternError(f"{path}: {pattern!r} is not a regular expression (a non-empty string)")
    try:
        compiled = re.compile(pattern)
    except re.error as err:
        raise UsernamePatternError(f"{path}: {pattern!r} is not a regular expression: {err}") from err
    for name in HOSTILE_USERNAMES:
        if compiled.fullmatch(name):
            raise UsernamePatternError(
                f"{path}: {pattern!r} accepts the user name {name!r}: a name is at most {MAX_USERNAME_CHARS} "
                "characters of A-Z a-z 0-9 _ . @ - (no whitespace, quote, or character a shell, sudo or Slurm reads "
                "as syntax), starting with a letter, digit or _; the hub refuses any other whatever the pattern says"
            )
    return pattern


def refused_usernames(names: object, pattern: str | None = DEFAULT_USERNAME_PATTERN) -> list[str]:
    """The names of the list ``names`` that ``username_ok`` refuses by ``pattern`` (None: by the floor alone), in
    order, as strings; a value that is not a list is refused whole."""
    if not isinstance(names, list | tuple):
        return [repr(names)]
    compiled = SAFE_USERNAME if pattern is None else _compiled(pattern)
    return [str(name) for name in names if not username_ok(name, compiled)]


def subdomain_hook(name: str, domain: str, kind: str) -> str:
    """JupyterHub's ``subdomain_hook`` (users' host names, with ``subdomain_host``): its ``idna`` hook, except that a
    user name with a capital letter never becomes a label as it is. Host names ignore case, so the ``idna`` hook
    would put ``Alice`` at ``Alice.hub.example.org``, which is ``alice.hub.example.org``: alice's origin. Such a name
    gets the ``idna`` hook's hashed form of its exact spelling (``u-alice--<sha256 prefix>``, a label no plain name
    gets: the ``idna`` hook hashes every name with ``--`` too), always lower case."""
    from jupyterhub.utils import subdomain_hook_idna

    if kind != "user" or name == name.lower():
        return str(subdomain_hook_idna(name, domain, kind))
    digest = hashlib.sha256(name.encode("utf8")).hexdigest()[:7]
    stub = "".join(c for c in name.lower() if c in "abcdefghijklmnopqrstuvwxyz0123456789")[:8] or "x"
    return f"u-{stub}--{digest}.{domain}"
