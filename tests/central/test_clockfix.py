"""Clock repair from the monotonic stamps of the same boot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from central.clockfix import repair, repaired_ts
from central.ingest import SentStamp
from tests.central.conftest import rating

RECEIVED = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_a_wrong_device_clock_is_repaired_and_the_original_kept():
    r = rating(1, ts=datetime(2001, 1, 1, tzinfo=UTC), boot="b1", mono=100.0)
    [fixed] = repair([r], SentStamp(ts=datetime(2001, 1, 1, 0, 10, tzinfo=UTC), boot="b1", mono=700.0), RECEIVED)
    assert fixed.ts == RECEIVED - timedelta(seconds=600)
    assert fixed.ts_device == datetime(2001, 1, 1, tzinfo=UTC)


def test_a_right_clock_is_left_alone_within_the_threshold():
    tap = RECEIVED - timedelta(seconds=600)
    r = rating(1, ts=tap + timedelta(seconds=90), boot="b1", mono=100.0)  # 90 s off: network noise or drift
    [same] = repair([r], SentStamp(ts=None, boot="b1", mono=700.0), RECEIVED)
    assert same.ts == r.ts and same.ts_device is None


def test_no_repair_across_boots_or_without_stamps():
    r = rating(1, ts=datetime(2001, 1, 1, tzinfo=UTC), boot="b0", mono=100.0)
    assert repaired_ts(r, SentStamp(ts=None, boot="b1", mono=700.0), RECEIVED) is None
    assert repaired_ts(r, None, RECEIVED) is None
    assert repaired_ts(rating(1, ts=RECEIVED), SentStamp(ts=None, boot="b1", mono=7.0), RECEIVED) is None
    later = rating(1, ts=RECEIVED, boot="b1", mono=800.0)  # a tap "after" the publish: a broken stamp
    assert repaired_ts(later, SentStamp(ts=None, boot="b1", mono=700.0), RECEIVED) is None


def test_a_message_that_waited_in_the_broker_keeps_its_time_when_the_device_knows_its_offset():
    published = RECEIVED - timedelta(hours=1)  # central was down for an hour; the broker held the message
    r = rating(1, ts=published - timedelta(seconds=300), boot="b1", mono=700.0)
    sent = SentStamp(ts=published, boot="b1", mono=1000.0)
    [kept] = repair([r], sent, RECEIVED, offset=0.4)
    assert kept.ts == r.ts and kept.ts_device is None
    # without a measured offset central can only assume the message just arrived
    [moved] = repair([r], sent, RECEIVED)
    assert moved.ts == RECEIVED - timedelta(seconds=300)
    # an offset that would put the publish after the receipt is stale (the clock was stepped): ignored
    assert repaired_ts(r, sent, RECEIVED, offset=7200.0) == RECEIVED - timedelta(seconds=300)


def test_a_wrong_clock_with_a_measured_offset_is_repaired_from_it():
    sent = SentStamp(ts=datetime(2001, 1, 1, 0, 10, tzinfo=UTC), boot="b1", mono=1000.0)
    offset = (RECEIVED - timedelta(seconds=2) - sent.ts).total_seconds()  # measured from receipts
    r = rating(1, ts=datetime(2001, 1, 1, 0, 5, tzinfo=UTC), boot="b1", mono=700.0)
    [fixed] = repair([r], sent, RECEIVED, offset=offset)
    assert fixed.ts == RECEIVED - timedelta(seconds=302)


def test_store_reads_the_offset_of_the_same_boot_only(store, clock):
    store.upsert_status("s", "k", {"state": "online"}, '{"boot": "b1", "clock_offset": -0.4}', clock.now())
    assert store.clock_offset("s", "k", "b1") == -0.4
    assert store.clock_offset("s", "k", "b2") is None
    assert store.clock_offset("s", "other", "b1") is None
