"""The core loop on real parts: taps → device SQLite → sync agent process → Mosquitto → central → alert."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime

import paho.mqtt.publish as publish

from device.config import load_config
from device.recorder import Recorder
from device.store import DeviceStore
from smileloop.cli import main
from smileloop_core import topics
from smileloop_core.clock import utc_iso
from tests.conftest import wait_for
from tests.loop.helpers import Watcher, run_smileloop, smileloop_process


def test_taps_reach_central_once_and_a_negative_raises_an_alert(broker, central, device_config):
    cfg_path = device_config("kiosk-1", survey={"response_interval": 0})
    watcher = Watcher(broker.port, topics.alerts("store-1"), topics.status("store-1", "kiosk-1"))
    try:
        for value in ("4", "3", "1", "4"):
            assert main(["tap", "--config", str(cfg_path), value]) == 0
        assert main(["tap", "--config", str(cfg_path), "2", "--reason", "waiting_time"]) == 0

        proc = run_smileloop("sync", "--config", str(cfg_path), "--once", "--timeout", "30")
        assert proc.returncode == 0, proc.stderr
        assert "5 receipted" in proc.stdout

        device = DeviceStore(load_config(cfg_path).storage.path)
        rows = {r["id"]: r for r in device.all_ratings()}
        assert {r["state"] for r in rows.values()} == {2}  # all delivered (receipted by central)

        stored = {r["id"]: r for r in central.store.query("SELECT * FROM ratings")}
        assert stored.keys() == rows.keys()
        for rid, r in rows.items():
            c = stored[rid]
            assert (c["device_id"], c["site"], c["location"], c["scale"], c["value"], c["ts"]) == \
                   ("kiosk-1", "store-1", "exit", "smiley4", r["value"], r["ts"])
            assert c["received_at"]

        alerts = central.store.query("SELECT * FROM alerts ORDER BY opened_at")
        negative_ids = {rid for rid, r in rows.items() if r["value"] <= 2}
        assert {a["rating_id"] for a in alerts} == negative_ids
        assert {a["kind"] for a in alerts} == {"negative_rating"} and {a["state"] for a in alerts} == {"open"}

        on_topic = wait_for(lambda: len(watcher.on(topics.alerts("store-1"))) == 2 and
                            watcher.on(topics.alerts("store-1")), message="2 alerts on the alerts topic")
        assert {a["rating_id"] for a in on_topic} == negative_ids
        reasons = {a["detail"]["reason"] for a in on_topic}
        assert reasons == {None, "waiting_time"}
        status_topic = topics.status("store-1", "kiosk-1")
        wait_for(lambda: watcher.on(status_topic)[-1]["state"] == "offline",
                 message="--once says goodbye on its way out")
        assert any(s["state"] == "online" for s in watcher.on(status_topic))
    finally:
        watcher.close()


def test_unreachable_broker_keeps_ratings_queued_and_says_so(tmp_path):
    from smileloop_core.mosquitto import reserve_port
    from tests.conftest import write_device_config

    cfg_path = write_device_config(tmp_path, f"mqtt://127.0.0.1:{(_unused := reserve_port()).port}")
    assert main(["tap", "--config", str(cfg_path), "1"]) == 0
    proc = run_smileloop("sync", "--config", str(cfg_path), "--once", "--timeout", "2")
    assert proc.returncode == 1
    assert "could not reach the broker at mqtt://127.0.0.1:" in proc.stderr
    assert "1 ratings stay queued" in proc.stderr
    assert DeviceStore(tmp_path / "device.db").backlog().queued == 1


def test_malformed_message_is_kept_as_rejected_and_central_goes_on(broker, central, device_config):
    topic = topics.ratings("store-1", "kiosk-9")
    publish.single(topic, b"{oops", qos=1, hostname="127.0.0.1", port=broker.port)
    good = {"id": "7b0f5a52-8c55-4a55-9f1c-0b6a3c1c2d11", "seq": 1, "ts": "2026-11-24T09:00:00Z",
            "scale": "smiley4", "value": 4, "location": "exit"}
    bad = {**good, "id": "7b0f5a52-8c55-4a55-9f1c-0b6a3c1c2d12", "seq": 2, "value": 9}
    payload = json.dumps({"v": 1, "device": "kiosk-9", "site": "store-1", "ratings": [good, bad]})
    publish.single(topic, payload, qos=1, hostname="127.0.0.1", port=broker.port)
    wait_for(lambda: central.store.count("ratings") == 1, message="the valid rating stored")
    rejected = wait_for(lambda: central.store.query("SELECT * FROM rejected ORDER BY id"), message="rejections")
    wait_for(lambda: central.store.count("rejected") == 2, message="two rejections")
    rejected = central.store.query("SELECT * FROM rejected ORDER BY id")
    assert rejected[0]["topic"] == topic and rejected[0]["raw"] == "{oops" and "not JSON" in rejected[0]["reason"]
    assert rejected[1]["rating_id"] == bad["id"] and "outside scale" in rejected[1]["reason"]


def test_redelivered_message_is_stored_once_and_alerts_once(broker, central):
    topic = topics.ratings("store-1", "kiosk-2")
    r = {"id": "0b6f7d3e-4c1a-4d5e-9a53-6a1f0f6f2a10", "seq": 1, "ts": "2026-11-24T09:00:00Z",
         "scale": "nps", "value": 2, "location": "desk"}
    payload = json.dumps({"v": 1, "device": "kiosk-2", "site": "store-1", "ratings": [r]})
    for _ in range(3):
        publish.single(topic, payload, qos=1, hostname="127.0.0.1", port=broker.port)
    wait_for(lambda: central.messages >= 3, message="three deliveries handled")
    assert central.store.count("ratings") == 1
    assert central.store.count("alerts") == 1


def test_negative_goes_at_once_not_held_for_the_batch_timer(broker, central, device_config, tmp_path):
    import threading

    from sync_agent.agent import SyncAgent

    cfg_path = device_config("kiosk-3", sync={"batch_delay": 120, "batch_size": 100}, survey={"response_interval": 0})
    cfg = load_config(cfg_path)
    recorder = Recorder(DeviceStore(cfg.storage.path), cfg)
    agent = SyncAgent(cfg)
    recorder.on_record(agent.wake)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        happy = recorder.record(4)
        wait_for(lambda: agent.status.connected, message="agent connected")
        unhappy = recorder.record(1)
        # the batch timer is two minutes; the negative must not wait for it
        wait_for(lambda: recorder.store.state_of(unhappy.id) == "delivered", timeout=15,
                 message="the negative delivered")
        assert central.store.count("alerts") == 1
        assert recorder.store.state_of(happy.id) in ("delivered", "queued", "sent")
    finally:
        stop.set()
        thread.join(10)


def test_last_will_marks_a_killed_agent_offline(broker, device_config, tmp_path):
    cfg_path = device_config("kiosk-4")
    status_topic = topics.status("store-1", "kiosk-4")
    watcher = Watcher(broker.port, status_topic)
    proc = smileloop_process("sync", "--config", str(cfg_path), log=tmp_path / "agent.log")
    try:
        wait_for(lambda: any(s["state"] == "online" for s in watcher.on(status_topic)), message="online status")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: watcher.on(status_topic)[-1]["state"] == "offline", message="the last will")
    finally:
        watcher.close()
        if proc.poll() is None:
            proc.kill()
    late = Watcher(broker.port, status_topic)  # a newcomer gets the retained status
    try:
        wait_for(lambda: late.on(status_topic), message="retained status")
        assert late.on(status_topic)[-1]["state"] == "offline"
    finally:
        late.close()


def test_repeat_presses_and_staff_test_taps_open_no_alert(broker, central):
    topic = topics.ratings("store-1", "kiosk-5")
    # made now: a rating that arrives long after it was made goes into the backlog summary instead
    base = {"ts": utc_iso(datetime.now(UTC)), "scale": "smiley4", "value": 1, "location": "exit"}
    ratings = [{**base, "id": "5a0f5a52-8c55-4a55-9f1c-0b6a3c1c2d1" + str(i), "seq": i + 1, "flags": flags}
               for i, flags in enumerate((["test"], ["repeat"], []))]
    payload = json.dumps({"v": 1, "device": "kiosk-5", "site": "store-1", "ratings": ratings})
    publish.single(topic, payload, qos=1, hostname="127.0.0.1", port=broker.port)
    wait_for(lambda: central.store.count("ratings") == 3, message="three ratings stored")
    wait_for(lambda: central.store.count("alerts") >= 1, message="the visitor's alert")
    alerts = central.store.query("SELECT rating_id FROM alerts WHERE kind = 'negative_rating'")
    assert [a["rating_id"] for a in alerts] == [ratings[2]["id"]]
