"""The shared catalogues cover every text the code marks — the kiosk's visitor texts and central's alert,
digest, follow-up and outcome texts — so a Swedish visitor or site manager never meets English."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from smileloop_core.i18n import LOCALE_DIR, SOURCES, available_languages, catalogue_path, translations

ROOT = Path(__file__).parents[2]


TEMPLATES = "**/templates/**.html"
METHODS = [("**.py", "python"), (TEMPLATES, "jinja2.ext:babel_extract")]  # as babel.cfg


def marked_messages() -> set[str | tuple[str, ...]]:
    """What ``pybabel extract -F babel.cfg … kiosk_ui central smileloop_core`` finds: texts, and (singular,
    plural) pairs, in the Python sources and in the console's templates."""
    found: set[str | tuple[str, ...]] = set()
    for package in SOURCES:
        for _file, _line, msg, _comments, _ctx in extract_from_dir(
                ROOT / package, method_map=METHODS, options_map={TEMPLATES: {"extensions": "jinja2.ext.i18n"}}):
            found.add(msg if isinstance(msg, str) else tuple(m for m in msg if m))
    return found


def test_every_marked_text_has_a_translation_in_every_catalogue():
    marked = marked_messages()
    assert "What went wrong?" in marked and len(marked) > 40  # the kiosk's
    assert "Unhappy visitor at {where}" in marked and "Waiting time" in marked  # central's, the shared reasons
    assert ("smileloop digest: {n} alert", "smileloop digest: {n} alerts") in marked
    assert "Acknowledge: I own it" in marked  # the console's templates
    for lang in available_languages()[1:]:
        with catalogue_path(lang).open("rb") as f:
            catalog = read_po(f)
        missing = []
        for m in marked:
            entry = catalog.get(m if isinstance(m, str) else m[0])
            strings = entry.string if entry else None
            if not (all(strings) if isinstance(strings, tuple) else strings):
                missing.append(m if isinstance(m, str) else m[0])
        assert not missing, f"{lang}: untranslated {sorted(missing)}"
        fuzzy = sorted(str(m.id) for m in catalog if m.id and m.fuzzy)
        assert not fuzzy, f"{lang}: fuzzy {fuzzy}"


def test_the_template_lists_every_marked_text():
    with (LOCALE_DIR / "smileloop.pot").open("rb") as f:
        template = {m.id if isinstance(m.id, str) else tuple(m.id) for m in read_po(f) if m.id}
    assert not marked_messages() - template, "run pybabel extract (docs/KIOSK.md, Languages)"


def test_translations_keep_their_placeholders():
    for lang in available_languages()[1:]:
        with catalogue_path(lang).open("rb") as f:
            catalog = read_po(f)
        for m in catalog:
            if m.id and m.python_brace_format:
                errors = list(m.check(catalog))
                assert not errors, f"{lang}: {m.id!r}: {errors}"


def test_catalogues_compile_and_unknown_languages_fall_back_to_english():
    assert "sv" in available_languages()
    assert translations("sv").gettext("Thank you!") == "Tack!"
    assert translations("sv").gettext("Opens again {time}").format(time="08:00") == "Öppnar igen 08:00"
    assert translations("sv").ngettext("smileloop digest: {n} alert", "smileloop digest: {n} alerts", 2) \
        == "smileloop-sammandrag: {n} larm"
    assert translations("de").gettext("Thank you!") == "Thank you!"
