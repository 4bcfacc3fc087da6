"""What a visitor agrees to when leaving a phone number or an e-mail: the sentence shown beside the contact field
(:mod:`kiosk_ui.screens`) and its version id, sent with the contact (docs/PROTOCOL.md, ``ratings[].consent``).

The version id is derived from the sentence's catalogue msgid, so rewording it is a new version by itself and
central can tell which wording each visitor saw; the language is the one the visitor read it in.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from kiosk_ui.i18n import N_
from smileloop_core.model import Consent

CONSENT_TEXT = N_("We use your phone number or e-mail only to answer you about this, and delete it afterwards.")
CONSENT_VERSION = "contact-" + hashlib.sha256(CONSENT_TEXT.encode()).hexdigest()[:12]


def consent(lang: str, at: datetime) -> Consent:
    """The record of the visitor agreeing, in ``lang``, at ``at`` (when they sent the contact)."""
    return Consent(text=CONSENT_VERSION, lang=lang, ts=at)
