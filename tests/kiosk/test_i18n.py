"""The catalogues cover every visitor text the code marks, so a Swedish visitor never meets English."""

from __future__ import annotations

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from kiosk_ui.i18n import LOCALE_DIR, available_languages, catalogue_path, translations


def marked_messages() -> set[str]:
    root = LOCALE_DIR.parent
    return {msg for _file, _line, msg, _comments, _ctx in extract_from_dir(root, method_map=[("**.py", "python")])
            if isinstance(msg, str)}


def test_every_marked_text_has_a_translation_in_every_catalogue():
    marked = marked_messages()
    assert "What went wrong?" in marked and len(marked) > 40
    for lang in available_languages()[1:]:
        with catalogue_path(lang).open("rb") as f:
            catalog = read_po(f)
        missing = sorted(m for m in marked if not (catalog.get(m) and catalog.get(m).string))
        assert not missing, f"{lang}: untranslated {missing}"
        fuzzy = sorted(m.id for m in catalog if m.id and m.fuzzy)
        assert not fuzzy, f"{lang}: fuzzy {fuzzy}"


def test_catalogues_compile_and_unknown_languages_fall_back_to_english():
    assert "sv" in available_languages()
    assert translations("sv").gettext("Thank you!") == "Tack!"
    assert translations("sv").gettext("Opens again {time}").format(time="08:00") == "Öppnar igen 08:00"
    assert translations("de").gettext("Thank you!") == "Thank you!"
