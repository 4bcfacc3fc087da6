"""A publish the broker refuses (ACL, MQTT v5 reason 135) is an error: its ratings stay queued, never sent.

Under MQTT 3.1.1 Mosquitto drops a denied publish and still acknowledges it: the ratings look ``sent``,
no receipt ever comes, and they go back to ``queued`` after ``ack_timeout`` — never counted as delivered.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from central.service import CentralService
from central.store import CentralStore
from device.config import load_config
from device.recorder import Recorder
from device.store import DeviceStore
from smileloop_core.mosquitto import Mosquitto, reserve_port
from smileloop_core.mqtt import BrokerSettings
from sync_agent.agent import SyncAgent
from tests.conftest import wait_for, write_device_config
from tests.sync.helpers import running, user_line

pytestmark = pytest.mark.broker

DENY_RATINGS = "topic read smileloop/#\ntopic write smileloop/v1/store-1/kiosk-r/status\n"
ALLOW_ALL = "topic readwrite smileloop/#\n"


@pytest.fixture
def acl_broker(tmp_path: Path):
    """Central's listener without an ACL; the devices' listener with one that denies the ratings topic."""
    device_port = (_reservation := reserve_port()).port  # held while the test runs
    acl = tmp_path / "acl"
    acl.write_text(DENY_RATINGS)
    acl.chmod(0o644)
    config = (f"per_listener_settings true\nlog_dest stdout\n{user_line()}"
              "listener {port} 127.0.0.1\nallow_anonymous true\n"
              f"listener {device_port} 127.0.0.1\nallow_anonymous true\nacl_file {acl}\n")
    broker = Mosquitto(tmp_path / "acl-broker", config=config).start()
    store = CentralStore(tmp_path / "central.db")
    central = CentralService(store, BrokerSettings.from_url(broker.url, connect_timeout=2.0))
    central.conn.backoff.cap = 0.5
    central.start()
    assert central.wait_ready(10)
    try:
        yield broker, device_port, acl, store
    finally:
        central.stop()
        store.close()
        broker.kill()


def test_v5_refused_publish_stays_queued_until_the_acl_allows_it(tmp_path: Path, acl_broker):
    broker, port, acl, central_store = acl_broker
    cfg = load_config(write_device_config(tmp_path / "dev", f"mqtt://127.0.0.1:{port}", device={"id": "kiosk-r"}))
    recorder = Recorder(DeviceStore(cfg.storage.path), cfg)
    ids = {recorder.record(v).id for v in (1, 2, 4)}
    agent = SyncAgent(cfg)
    with running(agent):
        wait_for(lambda: agent.status.refused_publishes >= 2, message="two refused publishes")
        assert "Not authorized (135)" in (agent.status.last_error or "")
        rows = recorder.store.all_ratings()
        assert {r["state"] for r in rows} == {0}, "a refused rating is never counted as sent"
        assert all(r["attempts"] == 0 and r["sent_at"] is None for r in rows)
        assert central_store.count("ratings") == 0

        acl.write_text(ALLOW_ALL)
        broker.proc.send_signal(signal.SIGHUP)  # Mosquitto reloads its ACL
        wait_for(lambda: recorder.store.backlog().undelivered == 0, timeout=20, message="delivered once allowed")
    assert {r["id"] for r in central_store.query("SELECT id FROM ratings")} == ids


def test_under_3_1_1_a_denied_publish_is_acked_but_never_counted_as_delivered(tmp_path: Path, acl_broker):
    _, port, _, central_store = acl_broker
    cfg = load_config(write_device_config(tmp_path / "dev", f"mqtt://127.0.0.1:{port}?protocol=3.1.1",
                                          device={"id": "kiosk-r"}, sync={"ack_timeout": 0.5}))
    recorder = Recorder(DeviceStore(cfg.storage.path), cfg)
    rating = recorder.record(1)
    agent = SyncAgent(cfg)
    with running(agent):
        # the broker PUBACKs it (sent), central never sees it, so no receipt: it is sent again and again
        wait_for(lambda: recorder.store.all_ratings()[0]["attempts"] >= 2, message="sent twice, receipted never")
        assert agent.status.refused_publishes == 0, "3.1.1 cannot tell refused from lost"
    assert recorder.store.state_of(rating.id) in ("queued", "sent")
    assert central_store.count("ratings") == 0
