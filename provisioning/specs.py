"""What staff type for a device's survey and hours (``en=How was…``, ``mon-fri=08:00-20:00``) → config values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from provisioning.errors import InvalidInput

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_question(items: Iterable[str]) -> dict[str, str]:
    """``["en=How was your visit?", "sv=Hur var…"]`` → ``{"en": …, "sv": …}``; none → the default question."""
    out: dict[str, str] = {}
    for item in items:
        lang, sep, text = item.partition("=")
        if not sep or not lang.strip() or not text.strip():
            raise InvalidInput(f"question {item!r} must look like LANG=TEXT, e.g. 'en=How was your visit today?'")
        out[lang.strip()] = text.strip()
    return out or {"en": "How was your visit today?"}


def parse_languages(text: str) -> tuple[str, ...]:
    """``"en,sv"`` or ``"en;sv"`` → ``("en", "sv")``."""
    langs = tuple(p.strip() for p in text.replace(";", ",").split(",") if p.strip())
    if not langs:
        raise InvalidInput(f"languages {text!r}: give at least one, e.g. en or en,sv")
    return langs


def _days(spec: str) -> list[str]:
    spec = spec.strip().lower()
    if "-" in spec:
        first, _, last = spec.partition("-")
        if first not in WEEKDAYS or last not in WEEKDAYS or WEEKDAYS.index(first) > WEEKDAYS.index(last):
            raise InvalidInput(f"hours: {spec!r} must be a day range like mon-fri")
        return list(WEEKDAYS[WEEKDAYS.index(first):WEEKDAYS.index(last) + 1])
    if spec not in WEEKDAYS:
        raise InvalidInput(f"hours: {spec!r} is not a weekday ({', '.join(WEEKDAYS)})")
    return [spec]


def parse_hours(items: Iterable[str]) -> dict[str, Any]:
    """``["mon-fri=08:00-20:00", "sat=10:00-14:00,15:00-18:00", "sun=closed"]`` → the ``[hours]`` table.

    The spans themselves are checked by the device's own config validator when the device is created.
    """
    out: dict[str, Any] = {}
    for item in items:
        days, sep, spans = item.partition("=")
        if not sep or not spans.strip():
            raise InvalidInput(f"hours {item!r} must look like DAYS=SPANS, e.g. mon-fri=08:00-20:00 or sun=closed")
        parts = [s.strip() for s in spans.split(",") if s.strip()]
        value: Any = parts[0] if len(parts) == 1 else parts
        for day in _days(days):
            out[day] = value
    return out
