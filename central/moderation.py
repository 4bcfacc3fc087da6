"""Free text from a public kiosk, made fit for a screen, a channel or a log: profanity and personal data masked.

:func:`moderate` masks, in Swedish and English alike (a comment does not say its language):

- e-mail addresses, also written out to dodge filters ("anna at example dot com", "anna snabel-a exempel
  punkt se", "anna (at) example (dot) com") → ``[e-mail]``;
- phone numbers and other long numbers (a personal identity number) in any usual notation ("070-123 45 67",
  "+46 70 123 45 67", "08/123 456 78"), also spelled out ("noll sju noll …", "zero seven zero …") → ``[phone]``;
  dates (2026-11-24, 24.11.2026) are left alone;
- profanity → asterisks, from the word lists of the maintained ``glin-profanity`` package (its English and
  Swedish dictionaries), less :data:`ALLOWED` — words that are ordinary in the other language or in feedback
  ("slut" is "sold out" in Swedish, "sex" is six, "sås" is sauce, "fan" is a fan) — plus :data:`EXTRA` inflections
  its Swedish list lacks.

The original text stays in the rating row (``ratings.comment``), for admins only and only as long as retention
allows (:mod:`central.retention`); everything else — alert details and texts, the alerts topic, the audit and the
log — gets the masked text. Masking is idempotent: masked text masks to itself.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

EMAIL_MASK = "[e-mail]"
PHONE_MASK = "[phone]"

# Ordinary words in the other language or in feedback, kept out of the profanity lists.
ALLOWED = frozenset({"slut", "sex", "fan", "hård", "sås", "olla", "stake", "pippa", "sätta på", "tusan", "brutta",
                     "satan", "prutt", "xx", "bs", "mf", "suck", "sucks", "butt", "nude", "scat", "grope", "rape"})
# Swedish inflections and compounds the package's list lacks (whole words only).
EXTRA = frozenset({"jävla", "jävel", "jävlig", "jävligt", "javla", "fittan", "fittor", "kuken", "kukar", "knullar",
                   "skitsnack", "skitdålig", "skitdåligt", "helvetes", "idiot", "idioter", "idioterna", "fucking",
                   "fucked", "motherfucker", "bullshit", "asshole", "assholes"})

_AT = r"(?:@|\s*[(\[](?:at|snabel-?a)[)\]]\s*|\s+(?:at|snabel-?a)\s+)"
_DOT = r"(?:\.|\s*[(\[](?:dot|punkt)[)\]]\s*|\s+(?:dot|punkt)\s+)"
EMAIL = re.compile(rf"(?<![\w.+-])[\w.+-]+{_AT}[\w-]+(?:{_DOT}[\w-]+)*{_DOT}[^\W\d_]{{2,12}}(?!\w)", re.IGNORECASE)
PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\d(?:[ \t\-./()]{0,3}\d){6,15}(?!\w)")
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4}")
_DIGIT_WORDS = ("noll|ett|en|två|tre|fyra|fem|sex|sju|åtta|nio|tio|zero|oh|one|two|three|four|five|six|seven|"
                "eight|nine|\\d")
SPELLED = re.compile(rf"(?<!\w)(?:{_DIGIT_WORDS})(?:[\s,\-]+(?:{_DIGIT_WORDS})){{6,15}}(?!\w)", re.IGNORECASE)


@functools.cache
def profanity() -> re.Pattern[str]:
    """One pattern for every listed word (whole words, any case; spaces inside a phrase match any spacing)."""
    from glin_profanity.data.dictionary import DictionaryLoader

    loader = DictionaryLoader()
    words = {w.lower() for lang in ("english", "swedish") for w in loader.get_words(lang)} | EXTRA
    words = {w for w in words - ALLOWED if w.strip()}
    parts = sorted((r"\s+".join(re.escape(p) for p in w.split()) for w in words), key=len, reverse=True)
    return re.compile(rf"(?<!\w)(?:{'|'.join(parts)})(?!\w)", re.IGNORECASE)


def _phone(m: re.Match[str]) -> str:
    text = m.group(0)
    return text if _DATE.fullmatch(text.strip()) else PHONE_MASK


def moderate(text: str | None) -> str | None:
    """``text`` with e-mail addresses, phone numbers and profanity masked (None stays None)."""
    if not text:
        return text
    text = EMAIL.sub(EMAIL_MASK, text)
    text = SPELLED.sub(PHONE_MASK, text)
    text = PHONE.sub(_phone, text)
    return profanity().sub(lambda m: "*" * len(m.group(0)), text)


def without_contacts(raw: bytes) -> bytes:
    """A ratings payload as kept in ``rejected``: each rating's ``contact`` and ``consent`` removed and its comment
    masked. A payload that is not a JSON object is kept as it came (retention removes it in a few weeks)."""
    try:
        msg: Any = json.loads(raw)
    except (ValueError, RecursionError):
        return raw
    if not isinstance(msg, dict) or not isinstance(msg.get("ratings"), list):
        return raw
    changed = False
    for r in msg["ratings"]:
        if not isinstance(r, dict):
            continue
        for key in ("contact", "consent"):
            if key in r:
                r[key] = "[removed]"
                changed = True
        if isinstance(r.get("comment"), str):
            masked = moderate(r["comment"])
            changed = changed or masked != r["comment"]
            r["comment"] = masked
    return json.dumps(msg, ensure_ascii=False).encode() if changed else raw
