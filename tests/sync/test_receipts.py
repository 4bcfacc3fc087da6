"""Receipt timeouts against a slow central: no re-sending while central works through the queue, but a batch
that got lost on the way (a later one was receipted) is sent again.

The central here is a real MQTT client that receipts one message at a time at a set pace, the way a busy
central drains its persistent session; it can also drop a message as a broker killed after PUBACK would.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from device.config import load_config
from device.recorder import Recorder
from device.store import DeviceStore
from smileloop_core.clock import utc_iso
from sync_agent.agent import SyncAgent
from tests.conftest import wait_for, write_device_config
from tests.sync.helpers import running

pytestmark = pytest.mark.broker


class PacedCentral:
    """Receipts each ratings message after ``pace`` seconds; drops the ``drop``-th message (1-based) once."""

    def __init__(self, port: int, topic: str, ack_topic: str, pace: float, drop: int | None = None) -> None:
        self.pace, self.drop, self.ack_topic = pace, drop, ack_topic
        self.seen = 0
        self.stored: set[str] = set()
        self._inbox: queue.Queue[bytes] = queue.Queue()
        self._stop = threading.Event()
        ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"paced-{uuid.uuid4().hex[:6]}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: ready.set()
        self.client.on_message = lambda c, u, m: self._inbox.put(bytes(m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert ready.wait(10)
        self._worker = threading.Thread(target=self._work, daemon=True)
        self._worker.start()

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                payload = self._inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen += 1
            if self.seen == self.drop:
                continue  # lost between the broker's PUBACK and central
            time.sleep(self.pace)
            ids = [r["id"] for r in json.loads(payload)["ratings"]]
            self.stored.update(ids)
            receipt = {"v": 1, "ts": utc_iso(datetime.now(UTC)),
                       "stored": [[i, 0] for i in ids], "rejected": []}
            self.client.publish(self.ack_topic, json.dumps(receipt), qos=1)

    def close(self) -> None:
        self._stop.set()
        self._worker.join(5)
        self.client.loop_stop()
        self.client.disconnect()


def _agent(tmp_path: Path, broker, n: int) -> tuple[SyncAgent, DeviceStore]:
    cfg = load_config(write_device_config(tmp_path / "dev", broker.url, sync={
        "ack_timeout": 0.5, "batch_size": 20, "max_inflight": 20, "batch_delay": 0.05}))
    recorder = Recorder(DeviceStore(cfg.storage.path), cfg)
    for _ in range(n):
        recorder.record(4)
    return SyncAgent(cfg), recorder.store


def test_a_slow_central_is_not_flooded_with_copies(tmp_path: Path, broker):
    agent, store = _agent(tmp_path, broker, 400)
    central = PacedCentral(broker.port, agent.topic_ratings, agent.topic_ack, pace=0.15)  # ≈ 130 ratings/s
    try:
        with running(agent):
            wait_for(lambda: store.backlog().undelivered == 0, timeout=30, message="all receipted")
        # 20 messages take ≈ 3 s, six times ack_timeout: without progress tracking most would go twice
        assert max(r["attempts"] for r in store.all_ratings()) == 1
        assert central.seen == 20
    finally:
        central.close()


def test_a_batch_lost_after_puback_is_sent_again_once_a_later_one_is_receipted(tmp_path: Path, broker):
    agent, store = _agent(tmp_path, broker, 200)
    central = PacedCentral(broker.port, agent.topic_ratings, agent.topic_ack, pace=0.05, drop=2)
    try:
        with running(agent):
            wait_for(lambda: store.backlog().undelivered == 0, timeout=30, message="all receipted")
        attempts = sorted(r["attempts"] for r in store.all_ratings())
        assert attempts.count(2) == 20 and attempts.count(1) == 180, "exactly the dropped batch went twice"
        assert len(central.stored) == 200
    finally:
        central.close()


def test_while_central_says_nothing_resends_back_off(tmp_path: Path, broker):
    agent, store = _agent(tmp_path, broker, 40)  # ack_timeout 0.5 s, and no central at all
    with running(agent):
        wait_for(lambda: store.backlog().sent == 40, message="all sent once")
        started = time.monotonic()
        wait_for(lambda: min(r["attempts"] for r in store.all_ratings()) >= 3, timeout=20,
                 message="a third send")
        waited = time.monotonic() - started
    # 0.5 s then 1 s between sends (doubling); a fixed timeout would have sent the third copy after ≈ 1 s
    assert waited >= 1.4
    assert agent.receipt_timeout() >= 2.0 - 0.01
