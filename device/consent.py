"""The visitor's consent beside a contact, on the device: its column, its stored form, and forgetting contacts.

A contact is kept on the device only until central has it: once a rating is delivered (or rejected) for
:data:`CONTACT_KEEP`, its contact and consent are cleared, while the anonymous rating stays for the normal
retention period (the store's :meth:`~device.store.DeviceStore.prune` does both).
"""

from __future__ import annotations

import json
from datetime import timedelta

from smileloop_core.clock import parse_utc
from smileloop_core.model import Consent

CONTACT_KEEP = timedelta(hours=1)  # after delivery: long enough for a late follow-up amend to be resent whole
CONSENT_COLUMN = "ALTER TABLE ratings ADD COLUMN consent TEXT"
FORGET_CONTACTS = ("UPDATE ratings SET contact = NULL, consent = NULL WHERE state >= 2 "
                   "AND (contact IS NOT NULL OR consent IS NOT NULL) AND delivered_at < ?")


def dump(consent: Consent | None) -> str | None:
    return json.dumps(consent.to_wire()) if consent is not None else None


def load(text: str | None) -> Consent | None:
    if not text:
        return None
    raw = json.loads(text)
    return Consent(text=str(raw["text"]), lang=str(raw["lang"]), ts=parse_utc(str(raw["ts"])))

