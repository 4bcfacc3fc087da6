import sqlite3
from pathlib import Path

import pytest

from device.config import parse_config
from device.errors import StoreError
from device.recorder import Recorder
from device.store import MIGRATIONS, DeviceStore
from smileloop_core.clock import FakeClock
from smileloop_core.errors import InvalidRating


@pytest.fixture
def cfg(tmp_path):
    return parse_config({"device": {"id": "k1", "site": "s1", "location": "exit"},
                         "survey": {"response_interval": 3}}, base=tmp_path)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def rec(cfg, clock):
    return Recorder(DeviceStore(cfg.storage.path), cfg, clock=clock)


def test_tap_is_durable_with_identity_and_clock_repair_fields(rec, cfg, clock):
    r = rec.record(1, reason="staff", comment="  rude at the till ")
    assert r.sentiment == "negative" and r.seq == 1
    reopened = DeviceStore(cfg.storage.path)  # a new connection sees the committed row
    row = reopened.all_ratings()[0]
    assert row["id"] == r.id and row["value"] == 1 and row["reason"] == "staff"
    assert row["comment"] == "rude at the till"
    assert row["boot_id"] == clock.boot_id() and row["mono"] == clock.monotonic()
    assert row["ts"] == "2026-11-24T09:00:00.000Z"
    assert reopened.state_of(r.id) == "queued"


def test_store_uses_wal_and_full_sync_for_taps(rec):
    conn = rec.store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_out_of_range_tap_stores_nothing(rec):
    with pytest.raises(InvalidRating):
        rec.record(7)
    with pytest.raises(InvalidRating, match="reason"):
        rec.record(1, reason="weather")
    assert rec.store.all_ratings() == []


def test_seq_is_monotonic_across_processes_and_reopen(cfg, clock):
    a = Recorder(DeviceStore(cfg.storage.path), cfg, clock=clock)
    b = Recorder(DeviceStore(cfg.storage.path), cfg, clock=clock)
    seqs = []
    for _ in range(5):
        clock.advance(10)
        seqs.append(a.record(4).seq)
        clock.advance(10)
        seqs.append(b.record(3).seq)
    assert seqs == list(range(1, 11))


def test_response_interval_flags_repeat_presses_but_keeps_them(rec, clock):
    first = rec.record(1)
    clock.advance(1.0)
    second = rec.record(1)
    clock.advance(3.5)
    third = rec.record(2)
    assert first.flags == () and second.flags == ("repeat",) and third.flags == ()
    assert len(rec.store.all_ratings()) == 3


def test_wall_clock_jump_does_not_fool_the_repeat_filter(rec, clock):
    from datetime import UTC, datetime
    rec.record(4)
    clock.set_wall(datetime(2020, 1, 1, tzinfo=UTC))  # RTC reset: wall time jumps back, monotonic does not
    clock.advance(10)
    assert rec.record(4).flags == ()


def test_outbox_orders_negatives_first_and_uses_its_partial_index(rec, clock):
    for v in (4, 3, 1, 4, 2):
        clock.advance(5)
        rec.record(v)
    batch = rec.store.next_batch(10)
    assert [r.value for r in batch] == [1, 2, 4, 3, 4]
    plan = rec.store._conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM ratings WHERE state = 0 ORDER BY priority DESC, seq LIMIT 5").fetchall()
    assert "ratings_outbox" in str(plan)


def test_outbox_life_cycle_only_receipts_deliver(rec, clock):
    r1, r2 = rec.record(1), None
    clock.advance(5)
    r2 = rec.record(4)
    store = rec.store
    store.mark_sent([(r1.id, 0), (r2.id, 0)], clock.now())
    assert store.backlog().sent == 2 and store.backlog().undelivered == 2
    assert store.next_batch(10) == []
    store.mark_delivered([(r1.id, 0)], clock.now())
    assert store.requeue() == 1  # agent restart: the unreceipted one goes again
    assert [r.id for r in store.next_batch(10)] == [r2.id]
    store.mark_rejected([(r2.id, "bad")], clock.now())
    assert store.backlog().undelivered == 0
    assert store.state_of(r1.id) == "delivered" and store.state_of(r2.id) == "rejected"


def test_amend_queues_a_new_revision_and_old_receipt_does_not_deliver_it(rec, clock):
    r = rec.record(1)
    rec.store.mark_sent([(r.id, 0)], clock.now())
    amended = rec.amend(r.id, reason="waiting_time", comment="20 minutes")
    assert amended.rev == 1 and amended.reason == "waiting_time"
    rec.store.mark_delivered([(r.id, 0)], clock.now())  # receipt for the first version arrives late
    assert rec.store.state_of(r.id) == "queued"
    rec.store.mark_delivered([(r.id, 1)], clock.now())
    assert rec.store.state_of(r.id) == "delivered"


def test_migrations_are_recorded_once(cfg):
    DeviceStore(cfg.storage.path)
    DeviceStore(cfg.storage.path)
    conn = sqlite3.connect(cfg.storage.path)
    names = [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == [name for name, _ in MIGRATIONS]


def test_unwritable_store_is_a_store_error(tmp_path: Path):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "device.db").write_text("this is not a database")
    with pytest.raises(StoreError):
        DeviceStore(tmp_path / "ro" / "device.db")


def test_a_failing_listener_does_not_undo_the_tap(rec):
    def boom(_):
        raise RuntimeError("listener bug")
    rec.on_record(boom)
    rec.record(3)
    assert len(rec.store.all_ratings()) == 1


def test_staff_test_tap_is_flagged_and_does_not_start_a_repeat_window(rec, clock):
    test_tap = rec.record(1, test=True)
    clock.advance(0.5)
    visitor = rec.record(1)  # half a second later, but after a test tap: a real visitor, not a repeat
    assert test_tap.flags == ("test",) and visitor.flags == ()
    assert rec.store.get(test_tap.id).to_wire()["flags"] == ["test"]


def test_a_store_that_went_away_raises_store_error_not_a_raw_sqlite_error(rec):
    rec.store.close()
    with pytest.raises(StoreError, match="could not record the tap"):
        rec.record(3)


def test_every_sqlite_error_leaves_the_store_as_store_error(rec):
    rec.store.close()
    for call in (rec.store.backlog, rec.store.all_ratings, rec.store.outcomes, rec.store.space,
                 lambda: rec.store.next_batch(5), lambda: rec.store.requeue(), rec.store.integrity_check):
        with pytest.raises(StoreError) as caught:
            call()
        assert isinstance(caught.value, OSError) and isinstance(caught.value.__cause__, sqlite3.Error)


def test_seq_is_never_reused_after_every_row_was_pruned(rec, clock):
    from datetime import timedelta

    first = [rec.record(4).seq for _ in range(3)]
    rec.store.mark_sent([(r.id, r.rev) for r in rec.store.next_batch(10)], clock.now())
    rec.store.mark_delivered([(r["id"], 0) for r in rec.store.all_ratings()], clock.now())
    assert rec.store.prune(clock.now() + timedelta(days=1)) == 3
    assert rec.store.all_ratings() == []
    clock.advance(10)
    assert rec.record(4).seq == first[-1] + 1
