"""The kiosk sends, with a contact, which consent sentence the visitor read, in which language, and when."""

from __future__ import annotations

import json
from pathlib import Path

from kiosk_ui.consent import CONSENT_TEXT, CONSENT_VERSION
from kiosk_ui.flow import Step
from kiosk_ui.i18n import translations
from smileloop_core.clock import utc_iso

ROOT = Path(__file__).parents[2]


def test_the_contact_is_stored_with_the_consent_the_visitor_read(make_device):
    d = make_device()
    flow = d.flow
    flow.tap(1)
    flow.toggle_language()
    assert flow.lang == "sv"
    flow.choose_reason("staff")
    flow.set_consent(True)
    flow.type_text("070-123 45 67")
    flow.send_details()
    assert flow.step is Step.THANKS
    (row,) = d.rows()
    assert row["contact"] == "070-123 45 67"
    assert json.loads(row["consent"]) == {"text": CONSENT_VERSION, "lang": "sv", "ts": utc_iso(flow.clock.now())}
    assert flow.store is not None and flow.store.next_batch(1)[0].to_wire()["consent"]["text"] == CONSENT_VERSION


def test_no_consent_record_without_a_contact(make_device):
    d = make_device()
    d.flow.tap(1)
    d.flow.choose_reason("staff")
    d.flow.type_text("slow")
    d.flow.send_details()
    (row,) = d.rows()
    assert (row["contact"], row["consent"]) == (None, None)


def test_the_version_names_the_sentence_the_screen_shows_and_translates():
    screens = (ROOT / "kiosk_ui" / "screens.py").read_text()
    assert " ".join(CONSENT_TEXT.split()[:8]) in screens and "delete it afterwards." in screens
    assert translations("sv").gettext(CONSENT_TEXT) != CONSENT_TEXT  # Swedish visitors read it in Swedish
    assert CONSENT_VERSION.startswith("contact-") and len(CONSENT_VERSION) == 20
