"""The message catalogs' tools, with the standard library only: read a ``.po`` file, write its ``.mo`` (GNU gettext's
binary format, which ``gettext.GNUTranslations`` reads), and find the messages marked in Python sources.

``scripts/i18n.py`` uses them to extract and compile; ``scripts/build_package.py`` compiles every ``.po`` of the
package into the wheel. The ``.mo`` of the same ``.po`` is the same bytes (entries sorted, no date).
"""

from __future__ import annotations

import ast
import struct
from pathlib import Path

#: Calls whose first argument (a string literal) is a message: gettext and its aliases, and N_ (marked only).
MARKERS = frozenset({"_", "gettext", "N_"})


def _unquote(text: str) -> str:
    """A .po string literal's contents (``"..."``, C escapes)."""
    text = text.strip()
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise ValueError(f"not a quoted .po string: {text[:60]!r}")
    body = text[1:-1]
    out: list[str] = []
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r"}
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt not in escapes:
                raise ValueError(f"unknown escape \\{nxt} in a .po string")
            out.append(escapes[nxt])
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def read_po(path: Path) -> tuple[dict[str, str], set[str]]:
    """``(messages, fuzzy)``: msgid -> msgstr (the header is msgid ""), and the msgids flagged fuzzy.
    Plural forms and contexts are not used by this project and are refused."""
    messages: dict[str, str] = {}
    fuzzy: set[str] = set()
    entry: dict[str, str] = {}
    flags: set[str] = set()
    key = ""

    def finish() -> None:
        nonlocal entry, flags
        if "msgid" in entry:
            if "msgstr" not in entry:
                raise ValueError(f"{path}: msgid {entry['msgid'][:40]!r} has no msgstr")
            if entry["msgid"] in messages:
                raise ValueError(f"{path}: msgid {entry['msgid'][:40]!r} appears twice")
            messages[entry["msgid"]] = entry["msgstr"]
            if "fuzzy" in flags:
                fuzzy.add(entry["msgid"])
        entry, flags = {}, set()

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line:
            finish()
        elif line.startswith("#,"):
            flags |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif line.startswith(("msgid ", "msgstr ")):
            key, _, rest = line.partition(" ")
            if key == "msgid" and "msgid" in entry:
                finish()
            entry[key] = _unquote(rest)
        elif line.startswith('"') and key:
            entry[key] += _unquote(line)
        else:
            raise ValueError(f"{path}:{number}: not supported in this project's catalogs: {line[:60]!r}")
    finish()
    return messages, fuzzy


def mo_bytes(messages: dict[str, str]) -> bytes:
    """GNU .mo data of ``messages`` (untranslated and empty msgstr left out, so gettext falls back to the msgid)."""
    items = sorted((k.encode(), v.encode()) for k, v in messages.items() if v or not k)
    count = len(items)
    ids_start = 7 * 4
    strs_start = ids_start + count * 8
    data_start = strs_start + count * 8
    ids = b""
    strs = b""
    id_table: list[int] = []
    str_table: list[int] = []
    for msgid, _msgstr in items:
        id_table += [len(msgid), data_start + len(ids)]
        ids += msgid + b"\0"
    for _msgid, msgstr in items:
        str_table += [len(msgstr), data_start + len(ids) + len(strs)]
        strs += msgstr + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, count, ids_start, strs_start, 0, 0)
    tables = struct.pack(f"<{2 * count}I", *id_table) + struct.pack(f"<{2 * count}I", *str_table)
    return header + tables + ids + strs


def compile_po(po: Path, mo: Path) -> None:
    messages, fuzzy = read_po(po)
    mo.write_bytes(mo_bytes({k: v for k, v in messages.items() if k not in fuzzy}))


def python_messages(path: Path) -> list[str]:
    """The messages a Python file marks: string literals given to ``_``, ``gettext`` or ``N_`` (first argument)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        first = node.args[0]
        if name in MARKERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.append(first.value)
    return found
