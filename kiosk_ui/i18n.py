"""Visitor texts in the visitor's language: the shared catalogues of :mod:`smileloop_core.i18n`
(``smileloop_core/locale``), which central's alert and outcome texts use too."""

from __future__ import annotations

from smileloop_core.i18n import (
    DOMAIN,
    LOCALE_DIR,
    N_,
    SOURCE_LANGUAGE,
    available_languages,
    catalogue_path,
    language_name,
    translations,
)

__all__ = [
    "DOMAIN",
    "LOCALE_DIR",
    "N_",
    "SOURCE_LANGUAGE",
    "available_languages",
    "catalogue_path",
    "language_name",
    "translations",
]
