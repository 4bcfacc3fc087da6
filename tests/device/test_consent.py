"""A contact is stored on the device only with the visitor's consent, goes out with it on the wire, and is
forgotten on the device soon after central has the rating (the anonymous rating stays for the retention)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from device.config import parse_config
from device.consent import CONTACT_KEEP
from device.recorder import Recorder
from device.store import DeviceStore
from smileloop_core.clock import FakeClock, utc_iso
from smileloop_core.errors import InvalidRating
from smileloop_core.model import Consent


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def rec(tmp_path, clock):
    cfg = parse_config({"device": {"id": "k1", "site": "s1", "location": "exit"}}, base=tmp_path)
    return Recorder(DeviceStore(cfg.storage.path, clock=clock), cfg, clock=clock)


def test_a_contact_needs_consent_and_travels_with_it(rec, clock):
    with pytest.raises(InvalidRating, match="consent"):
        rec.record(1, contact="anna@example.com")
    agreed = Consent(text="contact-3f2a9c1e0b7d", lang="sv", ts=clock.now())
    first = rec.record(1)
    with pytest.raises(InvalidRating, match="consent"):
        rec.amend(first.id, contact="070-123 45 67")
    amended = rec.amend(first.id, comment="slow", contact="070-123 45 67", consent=agreed)
    [sent] = rec.store.next_batch(10)
    assert sent == amended and sent.consent == agreed
    wire = sent.to_wire()
    assert wire["contact"] == "070-123 45 67"
    assert wire["consent"] == {"text": "contact-3f2a9c1e0b7d", "lang": "sv", "ts": utc_iso(clock.now())}
    assert "consent" not in rec.record(2, consent=agreed).to_wire()  # consent alone is nothing to keep


def test_contacts_are_forgotten_soon_after_delivery_never_before(rec, clock):
    agreed = Consent(text="v", lang="en", ts=clock.now())
    delivered = rec.record(1, contact="anna@example.com", consent=agreed)
    waiting = rec.record(1, contact="bob@example.com", consent=agreed)
    rec.store.mark_delivered([(delivered.id, delivered.rev)], clock.now())
    long_ago = clock.now() - timedelta(days=30)
    clock.advance(CONTACT_KEEP.total_seconds() - 60)
    assert rec.store.prune(long_ago) == 0
    assert rec.store.get(delivered.id).contact == "anna@example.com"
    clock.advance(120)
    assert rec.store.prune(long_ago) == 0  # the rating stays; only its contact goes
    rows = {r["id"]: r for r in rec.store.all_ratings()}
    assert (rows[delivered.id]["contact"], rows[delivered.id]["consent"]) == (None, None)
    assert rows[waiting.id]["contact"] == "bob@example.com"  # not yet at central: kept
