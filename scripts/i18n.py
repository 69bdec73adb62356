"""The project's message catalogs (gettext, domain ``jupyterhub_hpc``; docs/design.md, "Languages"), with Babel.

    python scripts/i18n.py extract   # writes src/jupyterhub_hpc/locale/jupyterhub_hpc.pot from the sources
    python scripts/i18n.py update    # adds new messages to each .po (empty msgstr), drops the ones gone
    python scripts/i18n.py compile   # each locale/<lang>/LC_MESSAGES/jupyterhub_hpc.po -> .mo
    python scripts/i18n.py check     # fails if a message has no translation, or a .mo is not the .po's

Messages are the string literals given to ``_``, ``gettext`` or ``N_`` in src/jupyterhub_hpc/*.py (Babel's Python
extractor) and those of ``{% trans %}`` and ``_()`` in the hub's templates (roles/jupyterhub/files/templates, Jinja's
own Babel extractor, ``jinja2.ext.babel_extract``). Babel's extractor reads tokens, not the syntax tree: a literal
anywhere inside ``_(...)`` is taken for the message (write ``_(LABELS[key])``, not ``_(LABELS["cores"])``), and on
Python 3.11 it sees no call inside an f-string (give the f-string a variable, not ``{_("...")}``).

Babel (requirements-dev.txt) runs on the controller only: the hub reads the committed ``.mo`` with the standard
library's gettext (jupyterhub_hpc/i18n.py), and scripts/build_package.py puts that ``.mo`` in the wheel as it is.
The same ``.po`` compiles to the same bytes: the catalogs' dates are fixed (git has their history) and the ``.mo``
has no date of its own, so ``check`` compares bytes (after a Babel upgrade that writes other bytes, run compile).
"""

from __future__ import annotations

import io
import re
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from jinja2.ext import babel_extract

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "jupyterhub_hpc"
LOCALE = PACKAGE / "locale"
TEMPLATES = ROOT / "roles" / "jupyterhub" / "files" / "templates"
DOMAIN = "jupyterhub_hpc"
PROJECT = "jupyterhub-hpc"

#: Calls whose first argument is a message: gettext and its alias ``_``, and ``N_`` (marked only).
KEYWORDS: dict[str, None] = {"_": None, "gettext": None, "N_": None}
#: Jinja's extractor as the hub renders: new-style gettext (jupyterhub_hpc.i18n.JinjaI18n), and a template Jinja
#: cannot parse is an error (Babel's default skips it silently).
JINJA_OPTIONS = {"newstyle_gettext": "true", "silent": "false"}
#: The date every catalog header says (POT-Creation-Date, PO-Revision-Date), and so the .mo's: fixed, so that the
#: same sources give the same files. The wheel's files are dated 1980-01-01 too.
DATE = datetime(1980, 1, 1, tzinfo=UTC)
HEADER_COMMENT = (
    "# Messages of jupyterhub-hpc (gettext domain jupyterhub_hpc): the hub's pages and the package's messages.\n"
    "# Made by scripts/i18n.py (extract, update): translate the msgstr lines, then run scripts/i18n.py compile."
)


def _version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def _stamp(catalog: Catalog) -> None:
    """The project's header fields (the dates fixed), whatever a catalog read from a file said (a translator's
    Last-Translator and Language-Team stay)."""
    catalog.project, catalog.version = PROJECT, _version()
    catalog.creation_date = catalog.revision_date = DATE
    catalog.header_comment = HEADER_COMMENT


def messages() -> Catalog:
    """The template: every message marked in the sources, where it is used (file for Python, file:line for
    templates), in a stable order (files sorted, Python first, each message where it first appears)."""
    catalog = Catalog(domain=DOMAIN, fuzzy=False)
    _stamp(catalog)
    catalog.msgid_bugs_address = catalog.last_translator = catalog.language_team = ""  # not Babel's placeholders
    for path in sorted(PACKAGE.glob("*.py")):
        # Python's places without line numbers: a line moved is no change of the catalogs. Babel writes a place
        # without a line as the file alone (and reads it back as (file, None)); its annotation says int.
        for _line, message, _comments, _context in extract_from_file("python", path, KEYWORDS):
            catalog.add(message, locations=[(path.relative_to(ROOT).as_posix(), None)])  # type: ignore[list-item]
    for path in sorted(TEMPLATES.glob("*.html")):
        # Jinja's extractor is typed with plain sequences where Babel's signature says Mapping and Collection.
        found = extract_from_file(babel_extract, path, KEYWORDS, options=JINJA_OPTIONS)  # type: ignore[arg-type]
        for line, message, _comments, _context in found:
            catalog.add(message, locations=[(path.relative_to(ROOT).as_posix(), line)])
    return catalog


def read(po: Path) -> Catalog:
    """A .po file's catalog; a line Babel cannot read (a msgid without msgstr, an unknown keyword) is an error."""
    with po.open("rb") as data:
        return read_po(data, locale=po.parent.parent.name, domain=DOMAIN, abort_invalid=True)


def write(path: Path, catalog: Catalog) -> None:
    with path.open("wb") as out:
        write_po(out, catalog, ignore_obsolete=True)


def mo_bytes(po: Path) -> bytes:
    """The compiled .po: messages without a translation, or fuzzy, left out (gettext falls back to the msgid)."""
    catalog = read(po)
    catalog.creation_date = catalog.revision_date = DATE  # the .mo says no date of its own, whatever the .po says
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


def placeholders(text: str) -> list[str]:
    """The {name} and %(name)s placeholders of a message, sorted (a translation must keep them all)."""
    return sorted(re.findall(r"\{[a-z_]*\}|%\([a-z_]+\)s", text))


def po_files() -> list[Path]:
    return sorted(LOCALE.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def check() -> list[str]:
    problems = []
    found = messages()
    for po in po_files():
        where = po.relative_to(ROOT)
        catalog = read(po)
        for message in found:
            if not message.id:
                continue  # the header
            translated = catalog.get(message.id)
            text = translated.string if translated is not None else ""
            if translated is None or not text or not isinstance(text, str) or translated.fuzzy:
                problems.append(f"{where}: no translation of {str(message.id)[:70]!r}")
            elif placeholders(text) != placeholders(str(message.id)):
                problems.append(f"{where}: the translation of {str(message.id)[:70]!r} has other placeholders")
        for message in catalog:
            if message.id and message.id not in found:
                problems.append(f"{where}: {str(message.id)[:70]!r} is used nowhere (run update)")
        mo = po.with_suffix(".mo")
        if not mo.is_file() or mo.read_bytes() != mo_bytes(po):
            problems.append(f"{mo.relative_to(ROOT)} is not the compiled {po.name} (run compile)")
    return problems


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) == 2 else ""
    if command == "extract":
        template = messages()
        template.fuzzy = True  # a template's header, as gettext's tools write it
        write(LOCALE / f"{DOMAIN}.pot", template)
    elif command == "update":
        template = messages()
        for po in po_files():
            catalog = read(po)
            # New messages get an empty msgstr, not a guess from a similar one (a fuzzy entry to review).
            catalog.update(template, no_fuzzy_matching=True)
            _stamp(catalog)
            catalog.fuzzy = False
            write(po, catalog)
    elif command == "compile":
        for po in po_files():
            po.with_suffix(".mo").write_bytes(mo_bytes(po))
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
