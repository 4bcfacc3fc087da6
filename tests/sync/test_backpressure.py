"""The backlog drains at a bounded rate, in batches cut to the broker's limits (MQTT v5 CONNACK)."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from central.service import CentralService
from central.store import CentralStore
from device.cli import visitor_taps
from device.config import load_config
from device.recorder import Recorder
from device.store import DeviceStore
from smileloop_core.mosquitto import Mosquitto
from smileloop_core.mqtt import BrokerSettings
from sync_agent.agent import SyncAgent
from tests.conftest import wait_for, write_device_config
from tests.sync.helpers import Watcher, running

pytestmark = pytest.mark.broker


def start(tmp_path: Path, extra: str) -> tuple[Mosquitto, CentralService, CentralStore]:
    broker = Mosquitto(tmp_path / "broker", extra_config=extra).start()
    store = CentralStore(tmp_path / "central.db")
    central = CentralService(store, BrokerSettings.from_url(broker.url, connect_timeout=2.0)).start()
    assert central.wait_ready(10)
    return broker, central, store


def backlog(cfg_path: Path, n: int, comment: str | None = None) -> tuple[Recorder, set[str]]:
    cfg = load_config(cfg_path)
    recorder = Recorder(DeviceStore(cfg.storage.path), cfg)
    if comment:
        ids = {recorder.record(3, comment=comment).id for _ in range(n)}
    else:
        visitor_taps(recorder, n, random.Random(3))
        ids = {r["id"] for r in recorder.store.all_ratings()}
    return recorder, ids


def test_batches_fit_the_brokers_maximum_packet_size(tmp_path: Path):
    broker, central, store = start(tmp_path, "max_packet_size 4000")
    try:
        cfg_path = write_device_config(tmp_path / "dev", broker.url, sync={"batch_size": 500})
        _, ids = backlog(cfg_path, 200, comment="x" * 300)  # ≈ 600 bytes each: 500 would be 300 kB
        agent = SyncAgent(load_config(cfg_path))
        watcher = Watcher(broker.port, agent.topic_ratings)
        agent.drain(60)
        assert agent.status.max_packet == 4000
        sizes = [len(p) for p in watcher.raw(agent.topic_ratings)]
        assert sizes and max(sizes) <= 4000 - 16 - len(agent.topic_ratings)
        assert agent.batch.size < 10
        assert {r["id"] for r in store.query("SELECT id FROM ratings")} == ids
        watcher.close()
    finally:
        central.stop()
        broker.kill()


def test_inflight_stays_within_the_brokers_receive_maximum(tmp_path: Path):
    broker, central, store = start(tmp_path, "max_inflight_messages 3")
    try:
        cfg_path = write_device_config(tmp_path / "dev", broker.url, sync={"batch_size": 10, "max_inflight": 50})
        _, ids = backlog(cfg_path, 600)
        agent = SyncAgent(load_config(cfg_path))
        most = 0
        with running(agent):
            deadline = time.monotonic() + 60
            while agent.store.backlog().undelivered and time.monotonic() < deadline:
                most = max(most, len(agent.pump.inflight))
                time.sleep(0.001)
        assert agent.status.receive_max == 3
        assert 1 <= most <= 2, "one slot of the broker's 3 stays free for the status heartbeat"
        assert {r["id"] for r in store.query("SELECT id FROM ratings")} == ids
    finally:
        central.stop()
        broker.kill()


def test_backlog_drains_at_the_bounded_rate_negatives_first(tmp_path: Path):
    broker, central, store = start(tmp_path, "")
    try:
        rate, size = 400.0, 20
        cfg_path = write_device_config(tmp_path / "dev", broker.url,
                                       sync={"max_rate": rate, "batch_size": size, "max_inflight": 20})
        _, ids = backlog(cfg_path, 800)
        agent = SyncAgent(load_config(cfg_path))
        arrivals: list[tuple[float, list[int]]] = []
        watcher = Watcher(broker.port, agent.topic_ratings)
        watcher.client.on_message = lambda c, u, m: arrivals.append(
            (time.monotonic(), [r["value"] for r in json.loads(m.payload)["ratings"]]))
        agent.drain(60)
        watcher.close()
        counts = [(t, len(v)) for t, v in arrivals]
        # In any one-second window: at most the rate plus one bucket (a backlog of 800 would otherwise land at once).
        for t0, _ in counts:
            in_window = sum(n for t, n in counts if t0 <= t < t0 + 1.0)
            assert in_window <= rate + max(rate, size) + size, f"{in_window} ratings within one second"
        values = [v for _, vs in arrivals for v in vs]
        negatives = sum(1 for v in values if v <= 2)
        assert all(v <= 2 for v in values[:negatives]), "every negative goes before any other rating"
        assert {r["id"] for r in store.query("SELECT id FROM ratings")} == ids
    finally:
        central.stop()
        broker.kill()


def test_receipt_timeout_grows_with_the_ratings_already_waiting(tmp_path: Path):
    broker = Mosquitto(tmp_path / "broker").start()  # no central: nothing is ever receipted
    try:
        cfg_path = write_device_config(tmp_path / "dev", broker.url,
                                       sync={"ack_timeout": 2, "max_rate": 1000, "batch_size": 100})
        recorder, _ = backlog(cfg_path, 1500)
        agent = SyncAgent(load_config(cfg_path))
        assert agent.receipt_timeout() == 2
        with running(agent):
            wait_for(lambda: recorder.store.backlog().sent >= 1500, timeout=30, message="all sent")
            waiting = agent.receipt_timeout()
        assert waiting == pytest.approx(2 + 1500 / 1000, abs=0.01)
        rows = recorder.store.all_ratings()
        # the last of the backlog waited longer than ack_timeout before being re-sent
        assert max(r["attempts"] for r in rows) == 1
    finally:
        broker.kill()
