"""The user's Slurm accounts, as the Server Options form offers them.

``HPCSlurmSpawner.accounts_cmd`` (``sacctmgr``, run as the hub's user, bounded like every command) lists the user's
associations; this module decides which of them are offered: well-formed names with one of the cluster's account
prefixes, sorted, each once. The spawner caches a user's list for ``accounts_cache_seconds``; when ``sacctmgr``
cannot answer, the form has a free text field and ``request_rules.validate_request`` checks the name and the prefix
only. ``ACCOUNT`` is the one grammar of an account name: the request rules accept no other.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: A Slurm account's name, here and in a request (``request_rules``).
ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*", re.ASCII)
#: The longest account name from sacctmgr that the form offers.
MAX_OFFERED = 64


def offered_accounts(output: str, prefixes: Sequence[str]) -> list[str]:
    """The accounts in ``sacctmgr``'s output (one per line) that the form offers; no prefix: any account."""
    wanted = tuple(prefixes) or ("",)
    found = {line.strip() for line in output.splitlines() if line.strip()}
    return sorted(
        account
        for account in found
        if account.startswith(wanted) and len(account) <= MAX_OFFERED and ACCOUNT.fullmatch(account)
    )
