"""The sync agent's parts on their own: no broker, a real store in tmp_path, time from a FakeClock."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from device.config import DeviceConfig, parse_config
from device.recorder import Recorder
from device.store import DeviceStore
from smileloop_core.clock import FakeClock, utc_iso
from smileloop_core.mqtt import Backoff
from sync_agent.clock_offset import ClockOffset
from sync_agent.housekeeping import EVERY, LOW_DISK_EVERY, Housekeeping
from sync_agent.limits import BrokerLimits
from sync_agent.pump import Pump, RateLimiter
from sync_agent.receipts import Receipts
from sync_agent.status import Heartbeat, SyncStatus


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cfg(tmp_path: Path) -> DeviceConfig:
    return parse_config({"device": {"id": "k1", "site": "s1", "location": "exit"},
                         "sync": {"batch_size": 10, "batch_delay": 1.0, "max_rate": 20, "max_inflight": 3}},
                        base=tmp_path)


@pytest.fixture
def recorder(cfg: DeviceConfig, clock: FakeClock) -> Recorder:
    return Recorder(DeviceStore(cfg.storage.path), cfg, clock=clock)


class Published:
    """What a pump handed to the connection: payloads, numbered like paho's message ids."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, object]] = []

    def __call__(self, payload: str) -> int:
        self.payloads.append(json.loads(payload))
        return len(self.payloads)


def _pump(recorder: Recorder, cfg: DeviceConfig, clock: FakeClock) -> tuple[Pump, Published]:
    sent = Published()
    pump = Pump(recorder.store, cfg.sync, clock, publish=sent, backoff=Backoff(0.0, 0.0),
                device_id=cfg.device_id, site=cfg.site)
    return pump, sent


# --- Receipts --------------------------------------------------------------------------------------
def test_a_batch_with_no_receipt_is_given_up_after_ack_timeout_and_the_next_wait_doubles():
    r = Receipts(ack_timeout=10.0)
    r.published(["a"], number=1, sent=0.0, now=0.0, rate=1000.0)
    assert r.expire(9.9) == []
    assert r.expire(10.0) == ["a"] and r.waiting == 0
    assert r.timeout(rate=1000.0) == 20.0, "central said nothing: the next batch waits twice as long"


def test_the_wait_grows_with_the_ratings_already_waiting_ahead():
    r = Receipts(ack_timeout=2.0)
    r.published([f"r{i}" for i in range(100)], number=1, sent=0.0, now=0.0, rate=50.0)
    assert r.timeout(rate=50.0) == 2.0 + 100 / 50


def test_a_slow_but_working_central_is_not_sent_copies():
    r = Receipts(ack_timeout=10.0)
    r.published(["a"], number=1, sent=0.0, now=0.0, rate=1000.0)
    r.published(["b"], number=2, sent=0.0, now=0.0, rate=1000.0)
    r.received(["a"], ["a"], now=9.0)
    assert r.expire(10.0) == [], "b may still be in central's queue: central receipted a moment ago"
    r.published(["c"], number=3, sent=11.0, now=11.0, rate=1000.0)
    r.received(["c"], ["c"], now=12.0)
    assert r.expire(20.0) == ["b"], "a later batch was receipted, so b was lost on the way"


def test_receipt_rate_is_measured_over_recent_receipts():
    r = Receipts(ack_timeout=10.0)
    assert r.receipt_rate() is None
    r.received([], ["a"] * 10, now=0.0)
    r.received([], ["b"] * 10, now=2.0)
    assert r.receipt_rate() == 10.0


# --- RateLimiter and Pump ----------------------------------------------------------------------------
def test_rate_limiter_refills_at_its_rate_and_halves_when_the_broker_is_busy():
    bucket = RateLimiter(max_rate=100.0, burst=10, now=0.0)
    bucket.take(10)
    bucket.refill(now=0.05)
    assert bucket.tokens == pytest.approx(5.0)
    bucket.slow_down()
    assert bucket.rate == 50.0
    for _ in range(10):
        bucket.recover()
    assert bucket.rate == 100.0


def test_pump_holds_a_part_batch_for_batch_delay_but_a_negative_goes_at_once(recorder, cfg, clock):
    pump, sent = _pump(recorder, cfg, clock)
    recorder.record(4)
    assert pump.pump(clock.monotonic(), BrokerLimits(), "t", flush=False) is None
    assert sent.payloads == [], "one positive waits for company"
    clock.advance(cfg.sync.batch_delay)
    pump.pump(clock.monotonic(), BrokerLimits(), "t", flush=False)
    assert len(sent.payloads) == 1 and len(pump.inflight) == 1
    recorder.record(1)
    pump.pump(clock.monotonic(), BrokerLimits(), "t", flush=False)
    assert [r["value"] for r in sent.payloads[1]["ratings"]] == [1]  # type: ignore[index]


def test_pump_keeps_within_the_brokers_window_and_marks_sent_only_on_puback(recorder, cfg, clock):
    for _ in range(50):
        recorder.record(3)
    pump, _ = _pump(recorder, cfg, clock)
    clock.advance(5)  # tokens for two batches
    pump.pump(clock.monotonic(), BrokerLimits(receive_max=2), "t", flush=True)
    assert len(pump.inflight) == 1, "one of the broker's two slots stays free for the heartbeat"
    assert recorder.store.backlog().sent == 0
    acked = pump.acked(1, 0)
    assert acked is not None and acked.refused is None
    assert recorder.store.backlog().sent == len(acked.flight.ids) == 10
    assert pump.acked(99, 0) is None, "not ours"


def test_a_refused_batch_stays_queued_and_busy_halves_the_rate(recorder, cfg, clock):
    recorder.record(1)
    pump, _ = _pump(recorder, cfg, clock)
    pump.pump(clock.monotonic(), BrokerLimits(), "t", flush=True)
    acked = pump.acked(1, 0x89)
    assert acked is not None and acked.refused and "refused a batch of 1" in acked.refused
    assert pump.limiter.scale == 0.5
    assert recorder.store.backlog().queued == 1


def test_a_rating_too_big_for_the_broker_is_reported_and_kept(recorder, cfg, clock):
    recorder.record(3, comment="x" * 400)
    pump, sent = _pump(recorder, cfg, clock)
    problem = pump.pump(clock.monotonic(), BrokerLimits(max_packet=200), "t", flush=True)
    assert problem and "larger than the broker's maximum packet size (200 bytes)" in problem
    assert sent.payloads == [] and recorder.store.backlog().queued == 1


def test_outbox_empty_only_when_nothing_is_queued_beyond_the_flight(recorder, cfg, clock):
    recorder.record(1)
    pump, _ = _pump(recorder, cfg, clock)
    pump.pump(clock.monotonic(), BrokerLimits(), "t", flush=True)
    assert pump.outbox_empty and len(pump.inflight) == 1


# --- Housekeeping -----------------------------------------------------------------------------------
def test_housekeeping_runs_on_the_clock_and_prunes_only_delivered(recorder, cfg, clock):
    store = recorder.store
    old = recorder.record(4)
    unsent = recorder.record(1)
    store.mark_sent([(old.id, 0)], clock.now())
    store.mark_delivered([(old.id, 0)], clock.now())
    keeper = Housekeeping(store, replace(cfg.storage, retention_days=1), clock)
    assert keeper.due() and not keeper.due()
    clock.advance(2 * 86400)
    report = keeper.run()
    assert report.pruned == 1 and not report.low and report.warning is None
    assert [r["id"] for r in store.all_ratings()] == [unsent.id]
    clock.advance(EVERY)
    assert keeper.due()


def test_housekeeping_says_when_space_is_short_and_looks_again_soon(recorder, cfg, clock):
    recorder.record(1)
    keeper = Housekeeping(recorder.store, replace(cfg.storage, min_free_mb=10**9), clock)
    assert keeper.due()
    report = keeper.run()
    assert report.low and report.warning and "1 unsent ratings kept" in report.warning
    clock.advance(LOW_DISK_EVERY)
    assert keeper.due()


# --- Heartbeat and clock offset -------------------------------------------------------------------------
def test_heartbeat_is_due_on_the_clock_or_at_once_when_asked(recorder, cfg, clock):
    beat = Heartbeat(SyncStatus(), recorder.store, clock)
    assert beat.due(clock.monotonic())
    beat.sent(clock.monotonic(), 60.0)
    clock.advance(59)
    assert not beat.due(clock.monotonic())
    beat.soon()
    assert beat.due(clock.monotonic())
    recorder.record(2)
    body = json.loads(beat.payload("online", cfg))
    assert (body["state"], body["backlog"], body["uptime"], body["boot"]) == ("online", 1, 59.0, clock.boot_id())


def test_clock_offset_forgets_old_samples_when_the_wall_clock_is_stepped(clock):
    offset = ClockOffset()
    central = clock.now() + timedelta(seconds=3600)
    sample = offset.measure(utc_iso(central), clock.now(), clock.monotonic() - 0.2, clock.monotonic())
    assert sample is not None and sample.offset == pytest.approx(3600.1) and sample.error == pytest.approx(0.1)
    assert offset.measure("not a time", clock.now(), 0.0, clock.monotonic()) is None
    clock.set_wall(clock.now() + timedelta(seconds=3600))  # NTP fixed it
    clock.advance(1)
    offset.measure(utc_iso(clock.now()), clock.now(), clock.monotonic() - 1.0, clock.monotonic())
    best = offset.best
    assert best is not None and best.offset == pytest.approx(0.5), "the hour-slow sample is gone"
