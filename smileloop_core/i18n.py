"""Texts in a person's language, from the gettext catalogues in ``smileloop_core/locale`` that the kiosk
(visitor texts) and central (alerts, digests, the follow-up, "you said, we did") share.

Message ids are the English texts. Each ``<lang>/LC_MESSAGES/smileloop.po`` is compiled with Babel in memory
when first used, so a fresh clone runs without a build step and a stale ``.mo`` can never shadow an edited
``.po``. English needs no catalogue (and no Babel).
"""

from __future__ import annotations

import gettext
import logging
from functools import cache
from io import BytesIO
from pathlib import Path

log = logging.getLogger(__name__)

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "smileloop"
SOURCE_LANGUAGE = "en"
# The packages whose marked texts the catalogues must cover (``pybabel extract`` and tests/kiosk/test_i18n.py).
SOURCES = ("kiosk_ui", "central", "smileloop_core")


def N_(message: str) -> str:
    """Mark a text for extraction without translating it yet (it is translated when shown)."""
    return message


def catalogue_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalogue for ``lang``; English, or a language without a catalogue, shows the ids."""
    path = catalogue_path(lang)
    if lang == SOURCE_LANGUAGE or not path.is_file():
        if lang != SOURCE_LANGUAGE:
            log.warning("no catalogue for language %r; showing English", lang)
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with path.open("rb") as f:
        catalog = read_po(f, locale=lang, domain=DOMAIN)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def available_languages() -> list[str]:
    """English plus every language that has a catalogue."""
    found = sorted(p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    return [SOURCE_LANGUAGE, *[lang for lang in found if lang != SOURCE_LANGUAGE]]


@cache
def language_name(lang: str) -> str:
    """The language's own name ("Svenska", "English")."""
    try:
        from babel import Locale

        return str(Locale.parse(lang).get_display_name(lang)).capitalize()
    except Exception:  # an unknown code still gets a name
        return lang.upper()
