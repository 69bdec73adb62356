"""The grammar of the values the resource rules read: memory sizes, durations, whole numbers, names; how a value is
shown in a message; ``ResourceError``, the error every rule raises.

Two readers: the deploy-time rules (``cluster_rules``: the inventory's YAML, lenient about ASCII whitespace) and the
spawn-time rules (``request_rules``: a user's request, strict). Pure functions of their arguments: no I/O, no
Ansible import; the standard library and the package's gettext (``jupyterhub_hpc.i18n``: on the hub a message is in
the request's language, in the preflight in English). Errors are ``ResourceError`` (a ``ValueError``) whose message
names the field, the value and the limit.

Units: memory is in MB as Slurm counts them (1 GB = 1024 MB); plain numbers are MB, strings may carry
K/M/G/T. Times are kept in minutes; plain numbers are hours (the form's unit), strings may be ``90m``,
``3h``, ``7d`` or Slurm's ``[D-]HH:MM[:SS]``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from jupyterhub_hpc.i18n import N_, _

__all__ = [
    "MAX_TEXT",
    "NAME",
    "PARTITION",
    "SHOWN",
    "Problems",
    "ResourceError",
    "duration_minutes",
    "hours",
    "memory_mb",
    "parse_memory_mb",
    "parse_walltime_minutes",
    "plain",
    "show",
    "text",
    "whole_number",
]

# ASCII only (re.ASCII): str.isdigit(), a Unicode \d or \s, and int()/float() accept characters such as '²', '\u0661'
# or '\x1f'. Patterns are used with fullmatch: '$' also matches before a trailing newline.
#: A name in the cluster model: the cluster's, a node type's, a GPU type's.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*", re.ASCII)
#: Slurm's --partition: a comma-separated list of partitions, or "" (Slurm's default partition).
PARTITION = re.compile(r"[A-Za-z0-9_,-]*", re.ASCII)
_NUMBER = r"([0-9]+(?:\.[0-9]+)?)"
_MEMORY_FACTORS: dict[str, Fraction] = {
    "K": Fraction(1, 1024),
    "M": Fraction(1),
    "G": Fraction(1024),
    "T": Fraction(1024**2),
}
_DURATION_FACTORS = {"": 60, "m": 1, "min": 1, "h": 60, "d": 24 * 60}  # no unit: hours
_SLURM_TIME = r"(?:([0-9]+)-)?([0-9]+)(?::([0-9]+))?(?::([0-9]+))?"


def _grammar(pattern: str, strict: bool) -> re.Pattern[str]:
    """``strict``: the pattern alone (a user's request); otherwise ASCII whitespace around and between tokens
    (the inventory's YAML, as documented)."""
    return re.compile(pattern.replace("~", "" if strict else r"\s*"), re.IGNORECASE | re.ASCII)


# A user's request (strict) and the inventory (lenient). The request's memory needs a unit letter before 'B'.
_MEMORY_RE = {
    True: _grammar(rf"{_NUMBER}(?:([KMGT])(?:i?B)?)?", strict=True),
    False: _grammar(rf"~{_NUMBER}~([KMGT])?(?:i?B)?~", strict=False),
}
_DURATION_RE = {strict: _grammar(rf"~{_NUMBER}~(m|min|h|d)?~", strict) for strict in (True, False)}
_SLURM_TIME_RE = {strict: _grammar(rf"~{_SLURM_TIME}~", strict) for strict in (True, False)}
_INT_RE = {strict: _grammar("~([0-9]+)~", strict) for strict in (True, False)}

#: The longest string any value may be: longer ones are refused before any parsing, whatever they contain.
MAX_TEXT = 256
#: A value in a message: at most this many characters of its repr.
SHOWN = 40


class ResourceError(ValueError):
    """A value breaks the cluster model. ``problems`` lists each broken rule; ``str()`` joins them."""

    def __init__(self, problems: Sequence[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class Problems:
    """Collects every broken rule, so one preflight run (or one request) lists them all."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)

    def guard(self, func: Callable[..., Any], *args: Any, default: Any = None) -> Any:
        """``func(*args)``, or ``default`` with its ``ResourceError``'s problems collected."""
        try:
            return func(*args)
        except ResourceError as err:
            self.items.extend(err.problems)
            return default

    def raise_any(self) -> None:
        """Raise a ``ResourceError`` of the problems collected so far, if there is one."""
        if self.items:
            raise ResourceError(self.items)


def show(value: Any) -> str:
    """``value`` for a message: one line, at most about 40 characters, and cheap whatever it is (a 100k-character
    string, an integer beyond int->str's digit limit, a deeply nested list)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**SHOWN:
        digits = f"{len(str(abs(value)))}" if value.bit_length() < 4000 else "more than 1200"
        return f"{'-' if value < 0 else ''}<an integer of {digits} digits>"
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, str):
        # repr escapes every non-printable character (newlines, controls, Unicode separators): one line.
        shown = repr(value[: SHOWN + 1])
        return shown if len(value) <= SHOWN and len(shown) <= SHOWN + 2 else f"{shown[:SHOWN]}...'"
    kind = (
        "list" if isinstance(value, (list, tuple)) else "object" if isinstance(value, Mapping) else type(value).__name__
    )
    return f"<a JSON {kind}>"  # never the repr of a container: it may be huge, or too deep to print


def plain(value: Any) -> str:
    """A value already known to be in a field's grammar, as the user typed it (``193`` rather than ``'193'``)."""
    return (value if len(value) <= SHOWN else f"{value[: SHOWN - 3]}...") if isinstance(value, str) else show(value)


def text(value: Any, field: str) -> str | None:
    """``value`` if it is a string of at most ``MAX_TEXT`` characters; ``None`` if not a string."""
    if not isinstance(value, str):
        return None
    if len(value) > MAX_TEXT:
        raise ResourceError(
            _("{field}: {value} is too long ({length} characters, at most {limit})").format(
                field=field, value=show(value), length=len(value), limit=MAX_TEXT
            )
        )
    return value


def hours(minutes: int) -> str:
    """Minutes as hours for a message: ``1.5``, ``24`` (never a float overflow, however large)."""
    return f"{minutes / 60:g}" if abs(minutes) < 10**15 else show(minutes // 60)


# -- numbers -------------------------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _exact(value: int | float, field: str) -> Fraction:
    """A number, exactly: a float as the decimal it prints as (``0.1`` is 1/10), never via float arithmetic,
    which overflows on integers such as ``10**400`` and rounds ``16.9 * 60`` to 1013.9999999999999."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ResourceError(_("{field}: {value} is not a finite number").format(field=field, value=show(value)))
        return Fraction(repr(value))
    return Fraction(value)


def _whole_positive(amount: Fraction, value: Any, field: str, positive: str, unit: str) -> int:
    """``amount`` (parsed from ``value``) as a whole, positive number of ``unit``."""
    if amount <= 0:
        raise ResourceError(
            _("{field}: {value} must be {positive}").format(field=field, value=show(value), positive=_(positive))
        )
    if amount.denominator != 1:
        raise ResourceError(
            _("{field}: {value} is not a whole number of {unit}").format(field=field, value=show(value), unit=_(unit))
        )
    return int(amount)


def whole_number(value: Any, field: str, minimum: int = 1, strict: bool = False) -> int:
    """A whole number: an int (never a bool, never a float) or its ASCII digits as text; ``strict`` (a user's
    request) allows nothing else in the text, otherwise ASCII whitespace around the digits is allowed (YAML)."""
    number = value
    # ASCII spaces only: int() refuses some characters str.isspace() and a Unicode \s accept ('0\x1f').
    if (digits := text(value, field)) is not None and (whole := _INT_RE[strict].fullmatch(digits)):
        number = int(whole.group(1))  # at most MAX_TEXT digits: within int()'s digit limit
    if not isinstance(number, int) or isinstance(number, bool):
        if isinstance(number, float):
            message = _("{field}: {value} is not a whole number (an integer, not a float)")
        else:
            message = _("{field}: {value} is not a whole number")
        raise ResourceError(message.format(field=field, value=show(value)))
    if number < minimum:
        raise ResourceError(
            _("{field}: {value} is below the minimum of {limit}").format(field=field, value=show(number), limit=minimum)
        )
    return number


# -- memory and durations ------------------------------------------------------------------------------------
def memory_mb(value: Any, field: str, strict: bool) -> int:
    """Memory in whole MB; ``strict``: a user's request (no whitespace, a unit letter before 'B')."""
    mb: Fraction
    if _is_number(value):
        mb = _exact(value, field)
    elif (size := text(value, field)) is not None and (match := _MEMORY_RE[strict].fullmatch(size)):
        mb = Fraction(match.group(1)) * _MEMORY_FACTORS[(match.group(2) or "M").upper()]
    else:
        raise ResourceError(
            _("{field}: {value} is not a memory size (examples: 4000, '4000M', '4G')").format(
                field=field, value=show(value)
            )
        )
    return _whole_positive(mb, value, field, N_("more than 0 MB"), N_("MB"))


def _slurm_time_minutes(match: re.Match[str]) -> Fraction:
    """Slurm's ``D-HH[:MM[:SS]]``, ``HH:MM:SS`` or ``MM:SS`` in minutes: seconds round up, in integers."""
    days, first, second, third = (int(g) if g else 0 for g in match.groups())
    if match.group(1) is not None:  # D-HH[:MM[:SS]]
        seconds = ((days * 24 + first) * 60 + second) * 60 + third
    elif match.group(4) is not None:  # HH:MM:SS
        seconds = (first * 60 + second) * 60 + third
    else:  # MM:SS
        seconds = first * 60 + second
    return Fraction(-(-seconds // 60))


def duration_minutes(value: Any, field: str, strict: bool) -> int:
    """A duration in whole minutes; ``strict``: a user's request (no whitespace)."""
    minutes: Fraction
    if _is_number(value):
        minutes = _exact(value, field) * 60
    elif (span := text(value, field)) is not None and (match := _DURATION_RE[strict].fullmatch(span)):
        minutes = Fraction(match.group(1)) * _DURATION_FACTORS[(match.group(2) or "").lower()]
    elif span is not None and ("-" in span or ":" in span) and (match := _SLURM_TIME_RE[strict].fullmatch(span)):
        minutes = _slurm_time_minutes(match)
    else:
        raise ResourceError(
            _("{field}: {value} is not a duration (examples: 3, '90m', '3h', '7d', '1-12:00:00')").format(
                field=field, value=show(value)
            )
        )
    return _whole_positive(minutes, value, field, N_("longer than 0 minutes"), N_("minutes"))


def parse_memory_mb(value: Any, field: str = "memory") -> int:
    """Memory in whole MB (Slurm's --mem unit). ``4000`` and ``"4000"`` are MB; ``"4G"`` is 4096 MB; ASCII
    whitespace around the number and unit is allowed (inventory YAML: ``"4 GB"``)."""
    return memory_mb(value, field, strict=False)


def parse_walltime_minutes(value: Any, field: str = "time") -> int:
    """Duration in whole minutes. Numbers (and digit strings) are hours; ``"90m"``, ``"3h"``, ``"7d"`` and
    Slurm's ``"D-HH:MM:SS"``, ``"HH:MM:SS"``, ``"D-HH"`` are accepted; seconds round up to a minute."""
    return duration_minutes(value, field, strict=False)
