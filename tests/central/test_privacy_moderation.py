"""Free text is masked before any screen, channel or log shows it: phone numbers and e-mail addresses however
they are written, and profanity, in Swedish and English; ordinary words of either language are left alone."""

from __future__ import annotations

import json

import pytest

from central.moderation import moderate, without_contacts
from central.texts import Texts


@pytest.mark.parametrize(("text", "masked"), [
    # Swedish
    ("ring mig på 070-123 45 67", "ring mig på [phone]"),
    ("Ring 08-123 456 78 eller +46 70 123 45 67", "Ring [phone] eller [phone]"),
    ("nummer: noll sju noll, ett två tre, fyra fem, sex sju", "nummer: [phone]"),
    ("maila anna.svensson@exempel.se tack", "maila [e-mail] tack"),
    ("skriv till anna snabel-a exempel punkt se", "skriv till [e-mail]"),
    ("jävla kass service, fan vad långsamt", "***** kass service, fan vad långsamt"),
    ("det var slut på kaffe och kall sås", "det var slut på kaffe och kall sås"),
    ("Jag var där 2026-11-24 kl 10.30, kassa 3", "Jag var där 2026-11-24 kl 10.30, kassa 3"),
    # English
    ("call me on 555 123 4567", "call me on [phone]"),
    ("mail me at anna at example dot com", "mail me at [e-mail]"),
    ("or anna (at) example (dot) co (dot) uk", "or [e-mail]"),
    ("mail me at ANNA@EXAMPLE.COM!", "mail me at [e-mail]!"),
    ("zero seven zero one two three four five six seven", "[phone]"),
    ("This is shit, what the fuck", "This is ****, what the ****"),
    ("I'm a big fan, I was at home. Then I paid 1 299 kr", "I'm a big fan, I was at home. Then I paid 1 299 kr"),
])
def test_personal_data_and_profanity_are_masked(text, masked):
    assert moderate(text) == masked
    assert moderate(masked) == masked  # idempotent


def test_alert_texts_show_only_the_masked_comment_in_both_languages():
    alert = {"id": "3f2a9c1e-0000", "kind": "negative_rating", "site": "store-1", "location": "exit",
             "title": "Unhappy visitor at store-1 / exit",
             "detail": {"value": 1, "scale": "smiley4", "comment": "ring 070-123 45 67, a@b.se, skit jävla"}}
    for lang in ("en", "sv"):
        _title, body = Texts(lang).alert(alert)
        assert "[phone], [e-mail], skit *****" in body and "070" not in body and "a@b.se" not in body


def test_rejected_payloads_are_kept_without_contacts():
    raw = json.dumps({"v": 1, "ratings": [{"contact": "a@b.se", "consent": {"text": "x"}, "comment": "a@b.se"}]})
    kept = without_contacts(raw.encode()).decode()
    assert "a@b.se" not in kept and "[removed]" in kept
    assert without_contacts(b"not json a@b.se") == b"not json a@b.se"  # kept as it came; retention removes it
