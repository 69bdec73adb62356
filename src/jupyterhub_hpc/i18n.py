"""The hub's pages and the project's messages in the language the browser prefers, per request.

* **Catalogs**: gettext catalogs of the domain ``jupyterhub_hpc`` under ``locale/<lang>/LC_MESSAGES/`` in this
  package (``.po`` is the source, ``.mo`` is compiled with Babel by ``scripts/i18n.py compile`` and committed;
  ``scripts/build_package.py`` puts it in the wheel). Read here with the standard library's gettext only. English is
  the source language (no catalog).
* **Negotiation** (``negotiate``): the request's ``Accept-Language`` is hostile input. A header longer than
  ``MAX_HEADER`` characters is ignored whole; at most ``MAX_ITEMS`` items are read; an item that is not a
  language tag (letters, digits and ``-``, with an optional ``;q=`` weight of HTTP's grammar) is skipped, so
  control characters, quotes or markup never get through; only a tag's primary subtag counts (``fr-CA`` is
  ``fr``), and only if it is in the site's allow-list (which holds only catalogs we ship). What comes out is
  always one of the allow-list's strings, never a piece of the header.
* **Per request, not per process**: the language is a ``ContextVar``. Tornado runs each request's handler in an
  asyncio task of its own, which starts with a copy of the context: ``install`` wraps JupyterHub's
  ``BaseHandler.prepare`` so that it sets the variable for the request being prepared, and only that task (and
  tasks it starts, such as a spawn) sees it. Other users' requests, served at the same time in other tasks, keep
  theirs. Nothing global changes with a request: the Jinja environment (shared by all requests) has gettext
  callables (``JinjaI18n``) that read the variable when a page is rendered, and the Server Options form and
  spawner messages call ``gettext`` in the same way. Outside a request (the preflight in Ansible, the tests) the
  variable is the default, English.
"""

from __future__ import annotations

import contextvars
import functools
import gettext as _gettext
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jinja2 import Environment
from jinja2.ext import InternationalizationExtension

DOMAIN = "jupyterhub_hpc"
LOCALE_DIR = Path(__file__).with_name("locale")
SOURCE_LANGUAGE = "en"
#: The languages this package has pages in: English (the source) and the catalogs it ships.
SHIPPED: tuple[str, ...] = ("en", "fr")
#: JupyterLab's language pack locale for each language (the pack in the users' environment), "" for Lab's own.
LAB_LOCALES: dict[str, str] = {"en": "", "fr": "fr_FR"}

MAX_HEADER = 512
MAX_ITEMS = 16
#: The tornado setting (JupyterHub.tornado_settings) holding the site's allow-list, most wanted first.
SETTING = "hpc_languages"

_ITEM = re.compile(
    r"(?P<tag>\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8}){0,7})"
    r"(?:[ \t]*;[ \t]*[qQ]=(?P<q>0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?))?",
    re.ASCII,
)

_language: contextvars.ContextVar[str] = contextvars.ContextVar("jupyterhub_hpc_language", default=SOURCE_LANGUAGE)


def allowed_languages(languages: Sequence[Any] | None) -> tuple[str, ...]:
    """The site's list kept to the languages we ship, in its order, without repeats; English if nothing is left."""
    kept: list[str] = []
    for language in languages or ():
        if isinstance(language, str) and language in SHIPPED and language not in kept:
            kept.append(language)
    return tuple(kept) or (SOURCE_LANGUAGE,)


def negotiate(header: Any, languages: Sequence[Any] | None = SHIPPED) -> str:
    """The language for a request: the allowed language the ``Accept-Language`` header weighs most (ties: the
    header's order), else the site's first language. Never raises, whatever ``header`` is."""
    allowed = allowed_languages(languages)
    fallback = allowed[0]
    if not isinstance(header, str) or not header or len(header) > MAX_HEADER:
        return fallback
    best, best_q = fallback, 0
    for item in header.split(",")[:MAX_ITEMS]:
        match = _ITEM.fullmatch(item.strip(" \t"))
        if match is None:
            continue
        q = round(float(match.group("q") or "1") * 1000)
        tag = match.group("tag").lower()
        language = fallback if tag == "*" else tag.split("-", 1)[0]
        if q > best_q and language in allowed:
            best, best_q = language, q
    return best


@functools.cache
def translations(language: str) -> _gettext.NullTranslations:
    """The compiled catalog of a shipped language (English, or a missing .mo: the messages as written)."""
    if language not in SHIPPED or language == SOURCE_LANGUAGE:
        return _gettext.NullTranslations()
    return _gettext.translation(DOMAIN, str(LOCALE_DIR), [language], fallback=True)


def current() -> str:
    """The language of the request being served (English outside a request)."""
    return _language.get()


def set_language(language: str) -> contextvars.Token[str]:
    """Set the current context's language (one of SHIPPED, else English)."""
    return _language.set(language if language in SHIPPED else SOURCE_LANGUAGE)


@contextmanager
def use(language: str) -> Iterator[None]:
    """The language for the ``with`` block (tests, and code that renders for someone else)."""
    token = set_language(language)
    try:
        yield
    finally:
        _language.reset(token)


def gettext(message: str) -> str:
    return translations(_language.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_language.get()).ngettext(singular, plural, n)


# gettext as the modules import it (from jupyterhub_hpc.i18n import _) and scripts/i18n.py extracts its calls. The one
# `_` of the repository: its throwaway variables have other names (ansible-test's pylint disallows `_` as one).
_ = gettext  # pylint: disable=disallowed-name


def N_(message: str) -> str:
    """Marks a message for the catalog without translating it (translated where it is shown)."""
    return message


def lab_locale(language: str) -> str:
    """JupyterLab's locale for a language ("" : Lab's default, English)."""
    return LAB_LOCALES.get(language, "")


class JinjaI18n(InternationalizationExtension):
    """jinja2.ext.i18n with gettext callables that follow the request's language (``{% trans %}``, ``_()``),
    new-style (``%(name)s`` placeholders, values escaped by the autoescaping). Enabled by JupyterHub's
    ``jinja_environment_options: {"extensions": ["jupyterhub_hpc.i18n.JinjaI18n"]}``."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
        environment.globals["hpc_language"] = current
        install()  # the hub renders these pages: each request's language must be set


_installed = False


def install() -> None:
    """Wrap JupyterHub's ``BaseHandler.prepare`` (once per process): each request sets its own language from its
    ``Accept-Language`` and the site's allow-list (tornado setting ``hpc_languages``)."""
    global _installed
    if _installed:
        return
    from jupyterhub.handlers.base import BaseHandler

    original = BaseHandler.prepare

    async def prepare(self: Any) -> Any:
        languages = self.settings.get(SETTING) or (SOURCE_LANGUAGE,)
        set_language(negotiate(self.request.headers.get("Accept-Language", ""), languages))
        return await original(self)

    prepare.__doc__ = original.__doc__
    BaseHandler.prepare = prepare
    _installed = True
