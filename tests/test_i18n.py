"""The Japanese catalogue is complete: nothing untranslated or fuzzy, compiled, and no string in the
code or templates that `makemessages` would add to it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
LOCALE = ROOT / "locale"
LANGUAGES = [code for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE]
# What makemessages must not walk: installed packages, build output, test output.
IGNORED = (".venv", "staticfiles", "test-artifacts", "node_modules", ".git")


def _catalogue(language: str, domain: str = "django") -> Path:
    return LOCALE / language / "LC_MESSAGES" / f"{domain}.po"


def _key(entry) -> tuple:
    return (entry.msgctxt or "", entry.msgid, entry.msgid_plural or "")


def _describe(entries) -> str:
    return "\n".join(
        f"  {entry.occurrences[0][0] if entry.occurrences else '?'}: {entry.msgid!r}" for entry in entries
    )


def test_only_english_is_the_source():
    assert settings.LANGUAGE_CODE == "en"
    assert LANGUAGES == ["ja"]
    assert [str(path) for path in settings.LOCALE_PATHS] == [str(LOCALE)]


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogue_has_no_untranslated_or_fuzzy_entry(language):
    po = polib.pofile(str(_catalogue(language)))
    assert po.metadata.get("Language") == language
    assert not po.metadata_is_fuzzy, "the header is marked fuzzy: msgfmt would drop the plural forms"
    assert po.metadata.get("Plural-Forms", "").startswith("nplurals=1;")
    untranslated = po.untranslated_entries()
    assert not untranslated, f"{len(untranslated)} untranslated:\n{_describe(untranslated)}"
    fuzzy = po.fuzzy_entries()
    assert not fuzzy, f"{len(fuzzy)} fuzzy (check and clear the flag):\n{_describe(fuzzy)}"
    # A plural must give every form, and no form may be empty.
    for entry in po:
        if entry.msgid_plural:
            assert all(entry.msgstr_plural.values()), entry.msgid


@pytest.mark.parametrize("language", LANGUAGES)
def test_compiled_catalogue_matches_the_po_file(language):
    """The .mo Django reads is compilemessages' output of the current .po, not an older one."""
    po = polib.pofile(str(_catalogue(language)))
    mo_path = _catalogue(language).with_suffix(".mo")
    assert mo_path.exists(), f"run: manage.py compilemessages -l {language}"
    mo = {_key(entry): entry for entry in polib.mofile(str(mo_path))}
    stale = []
    for entry in po.translated_entries():
        compiled = mo.get(_key(entry))
        wanted = entry.msgstr_plural if entry.msgid_plural else entry.msgstr
        got = (
            None if compiled is None else (compiled.msgstr_plural if entry.msgid_plural else compiled.msgstr)
        )
        if entry.msgid_plural and got is not None:
            got, wanted = {int(k): v for k, v in got.items()}, {int(k): v for k, v in wanted.items()}
        if got != wanted:
            stale.append(entry)
    assert not stale, f"run: manage.py compilemessages -l {language}\n{_describe(stale)}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_every_placeholder(language):
    """msgfmt --check: "%(amount)s" must survive translation, or formatting raises at run time."""
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        pytest.skip("msgfmt not found: install GNU gettext (apt-get install gettext); CI installs it")
    result = subprocess.run(
        [msgfmt, "--check", "-o", os.devnull, str(_catalogue(language))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _copy_source(target: Path) -> None:
    def ignore(directory, names):
        skipped = set(IGNORED) | {"__pycache__", ".pytest_cache", ".ruff_cache"}
        return [name for name in names if name in skipped or ".sqlite3" in name]

    shutil.copytree(ROOT, target, ignore=ignore, symlinks=True)


@pytest.fixture(scope="module")
def remade(tmp_path_factory):
    """makemessages run over a copy of the source tree, whose LOCALE_PATHS is the copy's locale/."""
    if shutil.which("xgettext") is None or shutil.which("msgmerge") is None:
        pytest.skip("xgettext not found: install GNU gettext (apt-get install gettext); CI installs it")
    copy = tmp_path_factory.mktemp("makemessages") / "src"
    _copy_source(copy)
    env = {**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "billing_console.settings"}
    env.pop("PYTHONPATH", None)
    ignores = [f"--ignore={name}" for name in IGNORED]
    for domain in ("django", "djangojs"):
        result = subprocess.run(
            [sys.executable, "manage.py", "makemessages", "-d", domain, *[f"-l={c}" for c in LANGUAGES]]
            + ignores
            + (["--ignore=static/vendor"] if domain == "djangojs" else []),
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    return copy / "locale"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_makemessages_would_add_nothing(remade, language, domain):
    """Every string marked for translation in the code and templates is in the shipped catalogue."""
    fresh_path = remade / language / "LC_MESSAGES" / f"{domain}.po"
    shipped_path = _catalogue(language, domain)
    if not fresh_path.exists():
        # No string in this domain (the console's scripts take their words from the page).
        assert not shipped_path.exists() or not polib.pofile(str(shipped_path)).translated_entries()
        return
    fresh = polib.pofile(str(fresh_path))
    assert shipped_path.exists(), f"{domain}.po is missing; run makemessages -d {domain} -l {language}"
    shipped = {_key(entry) for entry in polib.pofile(str(shipped_path)) if not entry.obsolete}
    new = [entry for entry in fresh if not entry.obsolete and _key(entry) not in shipped]
    assert not new, (
        f"{len(new)} strings are marked for translation but missing from locale/{language}:\n"
        f"{_describe(new)}\nrun makemessages -l {language} and translate them"
    )
    # …and makemessages found nothing it could not translate from the shipped catalogue.
    assert not fresh.untranslated_entries()
    assert not fresh.fuzzy_entries(), _describe(fresh.fuzzy_entries())
