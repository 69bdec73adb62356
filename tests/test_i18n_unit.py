"""Pages and messages in the browser's language (jupyterhub_hpc.i18n): the negotiation of a hostile Accept-Language,
the catalogs (complete, compiled), the language per request (concurrent tasks), the form, the rules' messages and the
hub's pages rendered in French and in English."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import re
import sys
from pathlib import Path
from typing import Any, ClassVar

import jinja2
import pytest
from hubpages import CONTEXT, environment
from test_spawner_unit import CLUSTER

from jupyterhub_hpc import form, i18n
from jupyterhub_hpc.cluster_rules import validate_cluster
from jupyterhub_hpc.logout import ServerAtLogout
from jupyterhub_hpc.pam import HPCPAMAuthenticator
from jupyterhub_hpc.request_rules import validate_request
from jupyterhub_hpc.units import ResourceError

ROOT = Path(__file__).resolve().parents[1]
MODEL = validate_cluster(CLUSTER)


def _script() -> Any:
    spec = importlib.util.spec_from_file_location("i18n_script", ROOT / "scripts" / "i18n.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- negotiation ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fr", "fr"),
        ("fr-CA", "fr"),
        ("FR-fr", "fr"),
        ("fr-CA,fr;q=0.9,en-US;q=0.8,en;q=0.7", "fr"),
        ("en-US,en;q=0.9,fr;q=0.8", "en"),
        ("de-DE,fr;q=0.5", "fr"),  # German is not shipped: the best shipped one
        ("de-DE,es;q=0.9", "en"),  # nothing shipped: the site's first language
        ("en;q=0.5,fr;q=0.6", "fr"),  # weights, not order
        ("fr;q=0.8,en;q=0.8", "fr"),  # a tie: the header's order
        ("fr;q=0", "en"),  # q=0: not acceptable
        ("*", "en"),
        ("fr;q=1.0", "fr"),
        ("fr;q=1.5", "en"),  # not HTTP's grammar: skipped
        ("fr;q=0.0001", "en"),  # more than 3 decimals: skipped
        ("", "en"),
        (None, "en"),
        (b"fr", "en"),  # not a str
        (42, "en"),
    ],
)
def test_negotiation(header: Any, expected: str) -> None:
    assert i18n.negotiate(header, ["en", "fr"]) == expected


@pytest.mark.parametrize(
    "header",
    [
        "fr\x00",
        "fr\r\nSet-Cookie: x=1",
        "fr<script>alert(1)</script>",
        "fr\x1b[31m",
        '"fr"',
        "fr;q=0.9;evil=<b>",
        "français",
        "fr_FR",  # not a language tag (underscore)
        "fr-" + "x" * 9,  # a subtag longer than 8
        "\u0066r",  # fine: it is "fr" (checked below)
    ][:-1],
)
def test_hostile_items_are_skipped(header: str) -> None:
    assert i18n.negotiate(header, ["en", "fr"]) == "en"
    assert i18n.negotiate(f"{header}, fr;q=0.1", ["en", "fr"]) == "fr"  # the valid item after it still counts


def test_a_huge_header_is_ignored_whole_and_cheaply() -> None:
    assert i18n.negotiate("fr," + "x" * 10_000_000, ["en", "fr"]) == "en"
    assert i18n.negotiate("fr" + ",de" * (i18n.MAX_HEADER // 3 + 1), ["en", "fr"]) == "en"  # too long
    many = ",".join(["de"] * (i18n.MAX_ITEMS)) + ",fr"  # fr is beyond the items read
    assert len(many) <= i18n.MAX_HEADER and i18n.negotiate(many, ["en", "fr"]) == "en"


def test_the_result_is_always_one_of_the_allow_list() -> None:
    for header in ("fr", "xx", "fr-CA", "<fr>", "*", "fr;q=0.5, zz"):
        assert i18n.negotiate(header, ["en", "fr"]) in ("en", "fr")
        assert i18n.negotiate(header, ["en"]) == "en"  # a site that turns French off


def test_the_site_list_keeps_only_shipped_languages() -> None:
    assert i18n.allowed_languages(["fr", "en", "fr", "de", 3, None]) == ("fr", "en")
    assert i18n.allowed_languages([]) == ("en",)
    assert i18n.allowed_languages(None) == ("en",)
    assert i18n.negotiate("de", ["fr"]) == "fr"  # a French-only site
    assert i18n.negotiate("en", ["fr", "en"]) == "en"


# -- catalogs ------------------------------------------------------------------------------------------------------
def test_every_message_has_a_french_translation_and_the_mo_is_compiled() -> None:
    assert _script().check() == []


def test_the_catalog_covers_messages_of_python_and_templates() -> None:
    found = _script().messages()
    assert "{field}: {value} is above the maximum of {limit}" in found  # request_rules.py
    assert "Sign in" in found  # login.html
    assert "%(s)s was stopped: %(j)s was cancelled and its resources are free." in found  # logout.html
    assert "Cluster job running... waiting to connect" in found  # batchspawner's, marked in spawner.py
    assert "None" in found  # form.py, given to _() outside an f-string (Babel sees no call in one on Python 3.11)
    # Babel's Python extractor takes a literal anywhere inside _() for the message: no dict key slipped in.
    assert "cores" not in found and "label" not in found
    # Python's places by file (a moved line changes no catalog), the templates' by line.
    login = "roles/jupyterhub/files/templates/login.html"
    assert found["Sign in"].locations == [(login, 16), (login, 82)]
    assert found["Cores"].locations == [("src/jupyterhub_hpc/model.py", None)]


def test_compiling_is_deterministic_and_readable_by_gettext(tmp_path: Path) -> None:
    """Babel compiles the same .po to the same bytes, whatever date the .po's header says (a translator's editor
    stamps PO-Revision-Date) and whatever the time and time zone: the .mo has no date of its own."""
    script = _script()
    po = i18n.LOCALE_DIR / "fr" / "LC_MESSAGES" / "jupyterhub_hpc.po"
    first = script.mo_bytes(po)
    assert script.mo_bytes(po) == first == po.with_suffix(".mo").read_bytes()
    redated = tmp_path / "fr" / "LC_MESSAGES" / "jupyterhub_hpc.po"
    redated.parent.mkdir(parents=True)
    text = po.read_text()
    assert text.count("1980-01-01 00:00+0000") == 2
    redated.write_text(
        text.replace("PO-Revision-Date: 1980-01-01 00:00+0000", "PO-Revision-Date: 2031-05-04 13:37+0200")
    )
    assert script.mo_bytes(redated) == first
    redated.write_text("\n".join(line for line in text.splitlines() if "-Date: " not in line))
    assert script.mo_bytes(redated) == first  # no dates at all: not today's
    import gettext

    translations = gettext.GNUTranslations(io.BytesIO(first))
    assert translations.gettext("Sign in") == "Connexion"
    assert translations.info()["content-type"] == "text/plain; charset=utf-8"


def test_check_finds_missing_and_fuzzy_translations_other_placeholders_and_a_stale_mo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _script()
    found = script.messages()
    text = (i18n.LOCALE_DIR / "fr" / "LC_MESSAGES" / "jupyterhub_hpc.po").read_text()
    po = tmp_path / "fr" / "LC_MESSAGES" / "jupyterhub_hpc.po"
    po.parent.mkdir(parents=True)
    monkeypatch.setattr(script, "ROOT", tmp_path)
    monkeypatch.setattr(script, "messages", lambda: found)
    monkeypatch.setattr(script, "po_files", lambda: [po])

    def problems(po_text: str) -> list[str]:
        po.write_text(po_text)
        po.with_suffix(".mo").write_bytes(script.mo_bytes(po))
        return list(script.check())

    assert problems(text) == []
    where = "fr/LC_MESSAGES/jupyterhub_hpc.po"
    fuzzy = text.replace('msgid "Sign in"', '#, fuzzy\nmsgid "Sign in"', 1)
    assert problems(fuzzy) == [f"{where}: no translation of 'Sign in'"]
    # A fuzzy translation stays out of the .mo: gettext shows the English.
    import gettext

    with po.with_suffix(".mo").open("rb") as data:
        assert gettext.GNUTranslations(data).gettext("Sign in") == "Sign in"
    untranslated = text.replace('msgid "Sign in"\nmsgstr "Connexion"', 'msgid "Sign in"\nmsgstr ""')
    assert untranslated != text and problems(untranslated) == [f"{where}: no translation of 'Sign in'"]
    assert problems(text.replace('msgstr "Grappe : {name}"', 'msgstr "Grappe : {nom}"')) == [
        f"{where}: the translation of 'Cluster: {{name}}' has other placeholders"
    ]
    assert problems(text + '\nmsgid "Gone"\nmsgstr "Parti"\n') == [f"{where}: 'Gone' is used nowhere (run update)"]
    po.write_text(text.replace('msgstr "Grappe : {name}"', 'msgstr "Grappe {name}"'))  # edited, not compiled
    assert script.check() == ["fr/LC_MESSAGES/jupyterhub_hpc.mo is not the compiled jupyterhub_hpc.po (run compile)"]


def test_a_malformed_po_is_refused(tmp_path: Path) -> None:
    from babel.messages.pofile import PoFileError

    script = _script()
    po = tmp_path / "fr" / "LC_MESSAGES" / "x.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid "a"\n\nmsgid "b"\nmsgstr "c"\n')
    with pytest.raises(PoFileError, match="missing msgstr"):
        script.read(po)
    po.write_text('msgid "a"\nmsgstr "b"\nnot a keyword\n')
    with pytest.raises(PoFileError, match="Unknown or misformatted keyword"):
        script.read(po)


# -- per request ---------------------------------------------------------------------------------------------------
def test_the_language_is_per_task_not_per_process() -> None:
    """Two requests served at once (two tasks, as Tornado runs handlers) each keep their own language."""

    async def request(language: str, seen: list[str]) -> None:
        i18n.set_language(language)
        for _i in range(5):
            await asyncio.sleep(0)
            seen.append(i18n.gettext("Sign in"))

    async def main() -> tuple[list[str], list[str]]:
        french: list[str] = []
        english: list[str] = []
        await asyncio.gather(request("fr", french), request("en", english))
        return french, english

    french, english = asyncio.run(main())
    assert set(french) == {"Connexion"} and set(english) == {"Sign in"}
    assert i18n.current() == "en"  # the caller's context is untouched


def test_install_sets_each_requests_language_in_prepare() -> None:
    from jupyterhub.handlers.base import BaseHandler

    i18n.install()
    i18n.install()  # once only
    assert BaseHandler.prepare.__qualname__.endswith("install.<locals>.prepare")

    class Request:
        headers: ClassVar[dict[str, str]] = {"Accept-Language": "fr-CA,fr;q=0.9"}

    class Handler:
        settings: dict[str, Any]
        request = Request()

    async def run(settings: dict[str, Any]) -> str:
        handler = Handler()
        handler.settings = settings
        # JupyterHub's own prepare needs a real handler and fails here: the language is set before it runs.
        with contextlib.suppress(Exception):
            await BaseHandler.prepare(handler)
        return i18n.current()

    assert asyncio.run(run({i18n.SETTING: ["en", "fr"]})) == "fr"
    assert asyncio.run(run({i18n.SETTING: ["en"]})) == "en"  # the site turned French off
    assert asyncio.run(run({})) == "en"  # no setting: English


# -- the project's messages ----------------------------------------------------------------------------------------
def test_the_form_in_french_and_in_english() -> None:
    with i18n.use("fr"):
        french = form.render(MODEL, ["def-alice"], {})
    english = form.render(MODEL, ["def-alice"], {})
    for label in ("Compte", "Durée (heures)", "Cœurs", "Mémoire (Mo)", "Interface"):
        assert f">{label}</label>" in french
    assert "de 1 à 4" in french and "Jupyter Notebook (interface classique)" in french
    assert re.findall(r'name="([a-z]+)"', french) == re.findall(r'name="([a-z]+)"', english)
    assert ">Cores</label>" in english and "1 to 4" in english


def test_validation_errors_name_field_value_and_limit_in_french() -> None:
    with i18n.use("fr"), pytest.raises(ResourceError) as err:
        validate_request({"cores": "64", "time": "100"}, MODEL, ["def-alice"])
    assert "Cœurs : 64 dépasse le maximum de 4" in str(err.value)
    assert "Durée (heures) : 100 dépasse le maximum de 8" in str(err.value)
    with pytest.raises(ResourceError, match="Cores: 64 is above the maximum of 4"):
        validate_request({"cores": "64"}, MODEL, ["def-alice"])


def test_the_authenticators_messages_in_french() -> None:
    with i18n.use("fr"):
        assert HPCPAMAuthenticator.throttled_message(30) == (
            "Trop de connexions échouées. Veuillez patienter 30 secondes et réessayer."
        )
        assert "2 minutes" in HPCPAMAuthenticator.throttled_message(90)
    assert HPCPAMAuthenticator.throttled_message(61) == "Too many failed logins. Please wait 2 minutes and try again."


def test_the_inactive_account_message_in_french() -> None:
    """The 403 on a correct password for an inactive account: the sentence and the default checks translated, a
    site's own check shown as written."""
    auth = HPCPAMAuthenticator(cluster_name="Demo")
    with i18n.use("fr"):
        assert auth.inactive_message() == (
            "Votre compte ou votre accès à Demo est actuellement inactif. Veuillez vérifier que : votre compte est "
            "actif (il a été renouvelé) ; votre accès à Demo est activé."
        )
        auth.account_checks = ["see https://ccdb.example.org for {cluster}."]
        assert auth.inactive_message().endswith("vérifier que : see https://ccdb.example.org for Demo.")


# -- the pages -----------------------------------------------------------------------------------------------------
BASE: dict[str, Any] = CONTEXT | {"authenticator": HPCPAMAuthenticator()}


def render(name: str, language: str, **ns: Any) -> str:
    async def go() -> str:
        i18n.set_language(language)
        return await environment().get_template(name).render_async(**(BASE | ns))

    return " ".join(asyncio.run(go()).split())


def test_the_login_page_in_french_and_in_english() -> None:
    french = render("login.html", "fr", login_error="Nom d'utilisateur ou mot de passe invalide")
    assert "<h1>Connexion</h1>" in french and "Nom d'utilisateur :" in french and "Mot de passe :" in french
    assert 'value="Connexion"' in french and "Connectez-vous avec votre compte Demo." in french
    assert "Sign in" not in french
    english = render("login.html", "en")
    assert "<h1>Sign in</h1>" in english and "Username:" in english and "Log in with your Demo account." in english


def test_the_login_error_and_username_are_escaped() -> None:
    page = render("login.html", "fr", login_error="<script>x</script>", username='"><script>y</script>')
    assert "<script>x" not in page and "<script>y" not in page


def test_the_spawn_page_in_french() -> None:
    with i18n.use("fr"):
        options = form.render(MODEL, ["def-alice"], {})
    page = render(
        "spawn.html",
        "fr",
        spawner_options_form=options,
        url="/hub/spawn",
        error_message="Cœurs : 64 <b>",
        for_user=None,
    )
    assert "<h1>Options du serveur</h1>" in page and ">Démarrer</button>" in page
    assert "Erreur : Cœurs : 64 &lt;b&gt;" in page  # the message is escaped inside the translation
    assert "Déconnexion" not in page  # no user: the login button
    assert ">Connexion</a>" in page


def test_the_spawn_pending_page_in_french() -> None:
    page = render("spawn_pending.html", "fr", user=None, spawner=None, progress_url="/p")
    assert "Votre serveur démarre." in page
    assert "<summary>Journal des événements</summary>" in page and ">Arrêter le serveur</button>" in page


def test_the_logout_page_in_french_and_in_english() -> None:
    servers = [vars(ServerAtLogout("", "10", "stopped")), vars(ServerAtLogout("<i>x</i>", "", "failed"))]
    french = render("logout.html", "fr", hpc_servers=servers, hpc_logout_confirm=False)
    assert "Vous êtes déconnecté de Demo." in french
    assert "Votre serveur a été arrêté : la tâche Slurm 10 a été annulée et ses ressources sont libérées." in french
    assert "Votre serveur « &lt;i&gt;x&lt;/i&gt; » n'a pas pu être arrêté" in french
    english = render("logout.html", "en", hpc_servers=servers, hpc_logout_confirm=False)
    assert "Your server was stopped: Slurm job 10 was cancelled and its resources are free." in english


def test_the_spawners_progress_messages_are_translated(tmp_path: Path) -> None:
    import asyncio

    from test_spawner_unit import spawner

    from jupyterhub_hpc.job_state import JobState

    s = spawner(tmp_path)

    async def first_message(job: JobState) -> str:
        s.job = job
        events = s.progress()
        event = await events.__anext__()
        await events.aclose()
        return str(event["message"])

    with i18n.use("fr"):
        assert [asyncio.run(first_message(job)) for job in (JobState("7", "PENDING"), JobState("7", "RUNNING"))] == [
            "En attente dans la file...",
            "Tâche en cours sur la grappe... en attente de connexion",
        ]
        assert asyncio.run(first_message(JobState())) == "État inconnu..."
    assert asyncio.run(first_message(JobState("7", "PENDING"))) == "Pending in queue..."


def test_the_job_gets_the_lab_locale_of_the_spawns_language(tmp_path: Path) -> None:
    from test_spawner_unit import spawner

    from jupyterhub_hpc.spawner import LAB_LOCALE_ENV

    s = spawner(tmp_path)
    with i18n.use("fr"):
        assert s.get_env()[LAB_LOCALE_ENV] == "fr_FR"
    assert s.get_env()[LAB_LOCALE_ENV] == ""  # English: Lab's default, and the name is still exported
    # batchspawner's default keepvars (the names sbatch --export passes), computed once: it has the name.
    assert LAB_LOCALE_ENV in type(s)._req_keepvars_default(s).split(",")


@pytest.mark.parametrize(
    ("value", "chosen"),
    [("fr_FR", True), ("", False), ("de_DE", False), ("../../etc", False), ("fr_FR\n", False)],
)
def test_the_users_server_reads_only_a_known_lab_locale(
    value: str, chosen: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """roles/jupyter_env's jupyter_server_config.py: Lab's settings directory of the job's locale, only if it is one
    of jupyter_env_lab_locales and the role made its directory."""
    import json

    from traitlets.config import Config

    source = (ROOT / "roles" / "jupyter_env" / "templates" / "jupyter_server_config.py.j2").read_text()
    env = jinja2.Environment()
    env.filters["to_json"] = json.dumps
    code = env.from_string(source).render(ansible_managed="managed", jupyter_env_lab_locales=["fr_FR"])
    (tmp_path / "share" / "jupyter" / "lab" / "settings-fr_FR").mkdir(parents=True)
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.setenv("JUPYTERHUB_HPC_LAB_LOCALE", value)
    config = Config()
    exec(compile(code, "jupyter_server_config.py", "exec"), {"get_config": lambda: config})
    expected = str(tmp_path / "share" / "jupyter" / "lab" / "settings-fr_FR")
    if chosen:
        assert config.LabApp.app_settings_dir == expected
        assert config.JupyterNotebookApp.app_settings_dir == expected
    else:
        assert "app_settings_dir" not in config.LabApp


def test_the_lab_locale_is_a_fixed_value() -> None:
    assert i18n.lab_locale("fr") == "fr_FR"
    assert i18n.lab_locale("en") == ""
    assert i18n.lab_locale("fr-CA<x>") == ""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
