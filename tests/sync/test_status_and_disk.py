"""The status heartbeat (backlog, age, disk, clock offset, version, uptime) and the disk bounds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from device.config import load_config
from device.errors import StoreError
from device.recorder import Recorder
from device.store import DeviceStore
from smileloop_core import __version__
from smileloop_core.clock import FakeClock, SystemClock
from sync_agent.agent import SyncAgent
from tests.conftest import wait_for, write_device_config
from tests.sync.helpers import Watcher, running


class BehindClock(SystemClock):
    """A device whose wall clock is an hour slow (a dead RTC battery, no NTP yet)."""

    def now(self) -> datetime:
        return super().now() - timedelta(hours=1)


def test_heartbeat_reports_backlog_disk_offset_version_and_uptime(broker, central, device_config):
    cfg = load_config(device_config("kiosk-h", sync={"heartbeat": 0.3}))
    clock = BehindClock()
    recorder = Recorder(DeviceStore(cfg.storage.path), cfg, clock=clock)
    for v in (1, 3, 4):
        recorder.record(v)
    agent = SyncAgent(cfg, clock=clock)
    watcher = Watcher(broker.port, agent.topic_status)
    try:
        first = None
        with running(agent):
            first = wait_for(lambda: watcher.last(agent.topic_status), message="a first status")
            status = wait_for(lambda: next((s for s in watcher.on(agent.topic_status)
                                            if s["backlog"] == 0 and s["clock_offset"] is not None), None),
                              message="a status after the receipts")
        assert first["state"] == "online" and first["version"] == __version__
        assert first["backlog"] == 3 and first["oldest_unsent_age"] >= 0
        assert status["clock_offset"] == pytest.approx(3600, abs=1.0)
        assert 0 <= status["clock_offset_error"] < 1.0
        assert status["disk_free_mb"] > 0 and status["disk_low"] is False
        assert status["uptime"] >= 0 and status["boot"] == clock.boot_id()
        assert status["config_version"] == 0 and status["delivered"] == 3
        wait_for(lambda: watcher.last(agent.topic_status)["state"] == "offline",
                 message="'offline' after a clean stop")
        saved = agent.store.agent_status()
        assert saved is not None and saved["clock_offset"] == status["clock_offset"]
    finally:
        watcher.close()


def _delivered(store: DeviceStore, n: int, at: datetime, recorder: Recorder) -> list[str]:
    ids = [recorder.record(4).id for _ in range(n)]
    store.mark_sent([(i, 0) for i in ids], at)
    store.mark_delivered([(i, 0) for i in ids], at)
    return ids


def test_delivered_ratings_are_pruned_after_retention_unsent_never(tmp_path: Path):
    cfg = load_config(write_device_config(tmp_path, "mqtt://127.0.0.1:1", storage={"retention_days": 7}))
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    store = DeviceStore(cfg.storage.path)
    recorder = Recorder(store, cfg, clock=clock)
    old = _delivered(store, 5, clock.now(), recorder)
    old_unsent = recorder.record(1).id
    clock.advance(8 * 86400)
    recent = _delivered(store, 3, clock.now(), recorder)
    agent = SyncAgent(cfg, clock=clock)
    agent.housekeeping()
    left = {r["id"] for r in store.all_ratings()}
    assert left == {old_unsent, *recent}
    assert not set(old) & left
    assert agent.status.pruned == 5 and agent.status.disk_low is False


def test_low_disk_prunes_oldest_delivered_reports_it_and_never_drops_unsent(tmp_path: Path):
    cfg = load_config(write_device_config(tmp_path, "mqtt://127.0.0.1:1",
                                          storage={"retention_days": 365, "min_free_mb": 0.2}))
    cap = dict(max_bytes=400_000, reserve_bytes=150_000)
    store = DeviceStore(cfg.storage.path, **cap)
    recorder = Recorder(store, cfg, clock=FakeClock())
    clock = FakeClock()
    delivered = _delivered(store, 300, clock.now(), recorder)
    unsent: list[str] = []
    with pytest.raises(StoreError, match="storage full") as full:
        for _ in range(10_000):
            unsent.append(recorder.record(2, comment="w" * 200).id)
    assert f"{len(unsent)} unsent ratings are kept" in str(full.value)
    assert {r["id"] for r in store.all_ratings()} == set(unsent), "the delivered made room; every unsent is kept"

    agent = SyncAgent(cfg, DeviceStore(cfg.storage.path, **cap), clock=clock)
    agent.housekeeping()
    assert agent.status.disk_low is True
    assert "storage low" in (agent.status.last_error or "") and f"{len(unsent)} unsent" in agent.status.last_error
    assert store.backlog().queued == len(unsent)
    assert store.integrity_check() == "ok"
    # delivery marks still fit in the reserve kept back from taps
    store.mark_sent([(i, 0) for i in unsent], clock.now())
    assert store.mark_delivered([(i, 0) for i in unsent], clock.now()) == len(unsent)
    agent.housekeeping()
    assert agent.status.disk_low is False and agent.status.pruned >= len(unsent)
    assert recorder.record(3).id
    assert delivered


def test_status_says_disk_low_over_mqtt(broker, device_config):
    cfg = load_config(device_config("kiosk-d", storage={"min_free_mb": 10**9}))  # more than any disk has
    agent = SyncAgent(cfg)
    watcher = Watcher(broker.port, agent.topic_status)
    try:
        with running(agent):
            status = wait_for(lambda: watcher.last(agent.topic_status), message="status")
        assert status["disk_low"] is True and "storage low" in status["storage_warning"]
        assert status["last_error"] == status["storage_warning"]
    finally:
        watcher.close()


def test_unsent_ratings_survive_any_amount_of_pruning(tmp_path: Path):
    store = DeviceStore(tmp_path / "d.db")
    cfg = load_config(write_device_config(tmp_path, "mqtt://127.0.0.1:1"))
    recorder = Recorder(store, cfg, clock=FakeClock())
    unsent = {recorder.record(1).id for _ in range(20)}
    sent = [recorder.record(4).id for _ in range(5)]
    store.mark_sent([(i, 0) for i in sent], datetime(2020, 1, 1, tzinfo=UTC))
    assert store.prune(datetime(2100, 1, 1, tzinfo=UTC)) == 0
    assert store.prune_oldest(10_000) == 0
    assert {r["id"] for r in store.all_ratings()} == unsent | set(sent)
    assert uuid.UUID(next(iter(unsent)))
