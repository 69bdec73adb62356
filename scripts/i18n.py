"""The project's message catalogs (gettext, domain ``jupyterhub_hpc``; docs/design.md, "Languages").

    python scripts/i18n.py extract   # writes src/jupyterhub_hpc/locale/jupyterhub_hpc.pot from the sources
    python scripts/i18n.py update    # adds new messages to each .po (empty msgstr), drops the ones gone
    python scripts/i18n.py compile   # each locale/<lang>/LC_MESSAGES/jupyterhub_hpc.po -> .mo
    python scripts/i18n.py check     # fails if a message has no translation, or a .mo is not the .po's

Messages are the string literals given to ``_``, ``gettext`` or ``N_`` in src/jupyterhub_hpc/*.py and those of
``{% trans %}`` and ``_()`` in the hub's templates (roles/jupyterhub/files/templates), found by Jinja's own i18n
extraction. Standard library and Jinja only (no Babel on the controller).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import jinja2

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "jupyterhub_hpc"
LOCALE = PACKAGE / "locale"
TEMPLATES = ROOT / "roles" / "jupyterhub" / "files" / "templates"
DOMAIN = "jupyterhub_hpc"


def _catalog_module() -> ModuleType:
    """jupyterhub_hpc/catalog.py by its path (stdlib only: no need for the package's dependencies)."""
    spec = importlib.util.spec_from_file_location("_jupyterhub_hpc_catalog", PACKAGE / "catalog.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


catalog = _catalog_module()


def messages() -> dict[str, list[str]]:
    """msgid -> where it is used (file:line for templates, file for Python), in a stable order."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        for message in catalog.python_messages(path):
            found.setdefault(message, []).append(path.relative_to(ROOT).as_posix())
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"])
    for path in sorted(TEMPLATES.glob("*.html")):
        for line, _func, message in env.extract_translations(path.read_text(encoding="utf-8")):  # type: ignore[attr-defined]
            if isinstance(message, str):
                found.setdefault(message, []).append(f"{path.relative_to(ROOT).as_posix()}:{line}")
    return found


def po_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    lines = escaped.split("\n")
    if len(lines) == 1:
        return f'"{escaped}"'
    parts = [f"{line}\\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    return '""\n' + "\n".join(f'"{part}"' for part in parts)


HEADER = (
    'msgid ""\nmsgstr ""\n"Project-Id-Version: jupyterhub-hpc\\n"\n"Language: {lang}\\n"\n'
    '"MIME-Version: 1.0\\n"\n"Content-Type: text/plain; charset=UTF-8\\n"\n"Content-Transfer-Encoding: 8bit\\n"\n'
)


def write_po(path: Path, lang: str, found: dict[str, list[str]], translated: dict[str, str]) -> None:
    out = [HEADER.format(lang=lang)]
    for message, places in found.items():
        refs = "".join(f"#: {place}\n" for place in dict.fromkeys(places))
        out.append(f"{refs}msgid {po_string(message)}\nmsgstr {po_string(translated.get(message, ''))}\n")
    path.write_text("\n".join(out), encoding="utf-8")


def placeholders(text: str) -> list[str]:
    """The {name} and %(name)s placeholders of a message, sorted (a translation must keep them all)."""
    return sorted(re.findall(r"\{[a-z_]*\}|%\([a-z_]+\)s", text))


def po_files() -> list[Path]:
    return sorted(LOCALE.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def check() -> list[str]:
    problems = []
    found = messages()
    for po in po_files():
        translated, fuzzy = catalog.read_po(po)
        for message in found:
            if not translated.get(message) or message in fuzzy:
                problems.append(f"{po.relative_to(ROOT)}: no translation of {message[:70]!r}")
            elif placeholders(translated[message]) != placeholders(message):
                problems.append(f"{po.relative_to(ROOT)}: the translation of {message[:70]!r} has other placeholders")
        for message in translated.keys() - found.keys() - {""}:
            problems.append(f"{po.relative_to(ROOT)}: {message[:70]!r} is used nowhere (run update)")
        mo = po.with_suffix(".mo")
        if not mo.is_file() or mo.read_bytes() != catalog.mo_bytes(
            {k: v for k, v in translated.items() if k not in fuzzy}
        ):
            problems.append(f"{mo.relative_to(ROOT)} is not the compiled {po.name} (run compile)")
    return problems


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) == 2 else ""
    if command == "extract":
        write_po(LOCALE / f"{DOMAIN}.pot", "", messages(), {})
    elif command == "update":
        found = messages()
        for po in po_files():
            translated, _fuzzy = catalog.read_po(po)
            write_po(po, po.parent.parent.name, found, translated)
    elif command == "compile":
        for po in po_files():
            catalog.compile_po(po, po.with_suffix(".mo"))
    elif command == "check":
        problems = check()
        print("\n".join(problems) or "catalogs complete and compiled")
        return 1 if problems else 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
