"""Config pushed by central: validated, applied atomically as an overlay, acknowledged; bad ones change nothing."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from device.config import ConfigError, central_overlay_path, check_push, load_config
from smileloop_core.pin import hash_pin
from sync_agent.agent import SyncAgent
from sync_agent.config_push import apply_push
from sync_agent.errors import ConfigRejected
from tests.conftest import wait_for, write_device_config
from tests.sync.helpers import Watcher, running


def push(version: object, **config: object) -> bytes:
    return json.dumps({"v": 1, "version": version, "config": config}).encode()


@pytest.fixture
def staff(tmp_path: Path) -> Path:
    return write_device_config(tmp_path / "dev", "mqtt://127.0.0.1:1", survey={"response_interval": 3.0},
                               hours={"timezone": "Europe/Stockholm", "sun": "closed"})


def test_good_push_is_written_beside_the_staff_file_and_merged_key_by_key(staff: Path):
    before = staff.read_bytes()
    os.utime(staff, ns=(1_000_000_000, 1_000_000_000))  # the staff file's mtime must stay as staff left it
    config, result = apply_push(load_config(staff), push(2, sync={"batch_size": 40},
                                                            hours={"mon": "08:00-20:00"}))
    assert (result.state, result.version) == ("applied", 2)
    assert staff.read_bytes() == before, "the staff file is never rewritten"
    assert staff.stat().st_mtime_ns == 1_000_000_000, "…nor touched: the kiosk watches the overlay itself"
    assert central_overlay_path(staff).name == "device.central.toml"
    reloaded = load_config(staff)  # what the kiosk sees when it reloads between visitors
    assert reloaded == config
    assert reloaded.version == 2
    assert reloaded.sync.batch_size == 40
    assert reloaded.sync.ack_timeout == 3.0, "a key central does not name keeps the staff value"
    assert reloaded.hours.weekly == {"mon": (("08:00", "20:00"),), "sun": ()}
    assert reloaded.survey.response_interval == 3.0


@pytest.mark.parametrize(("config", "why"), [
    ({"survey": {"scale": "stars"}}, "survey.scale"),
    ({"sync": {"batch_size": 0}}, "sync.batch_size"),
    ({"sync": {"batch_size": 10}, "hours": {"mon": "20:00-08:00"}}, "hours.mon"),  # partly good: nothing applied
    ({"sync": {"turbo": True}}, "sync.turbo"),
    ({"broker": {"url": "mqtt://elsewhere:1883"}}, "[broker] cannot be set by central"),
    ({"device": {"id": "someone-else"}}, "[device] cannot be set by central"),
    ({"survey": {"question": None}}, "survey.question"),
])
def test_bad_push_is_rejected_with_the_reason_and_the_old_config_stays(staff: Path, config, why):
    apply_push(load_config(staff), push(2, sync={"batch_size": 40}))
    overlay = central_overlay_path(staff).read_bytes()
    with pytest.raises(ConfigRejected, match=why.replace("[", r"\[").replace("]", r"\]")):
        apply_push(load_config(staff), push(3, **config))
    assert central_overlay_path(staff).read_bytes() == overlay
    assert load_config(staff).version == 2
    assert load_config(staff).sync.batch_size == 40


@pytest.mark.parametrize(("payload", "why"), [
    (b"not json", "not JSON"),
    (b'{"v": 2, "version": 3, "config": {}}', "'v' is 2"),
    (b'{"v": 1, "version": "3", "config": {}}', "'version' must be a whole number"),
    (b'{"v": 1, "version": 3, "config": []}', "'config' must be an object"),
])
def test_malformed_push_names_what_is_wrong(staff: Path, payload: bytes, why: str):
    with pytest.raises(ConfigRejected, match=why):
        apply_push(load_config(staff), payload)
    assert not central_overlay_path(staff).exists()


def test_older_version_is_rejected_and_the_same_one_again_is_unchanged(staff: Path):
    config, _ = apply_push(load_config(staff), push(5, sync={"batch_size": 40}))
    again, result = apply_push(config, push(5, sync={"batch_size": 40}))
    assert result.state == "unchanged" and again is config
    with pytest.raises(ConfigRejected, match="older than version 5"):
        apply_push(config, push(4, sync={"batch_size": 10}))


def test_a_broken_overlay_never_stops_the_device(staff: Path):
    central_overlay_path(staff).write_text("[sync]\nbatch_size = 0\n")  # e.g. left behind by an old build
    assert load_config(staff).sync.batch_size == 100


def test_push_over_mqtt_is_applied_acknowledged_and_a_bad_one_rejected(broker, device_config):
    cfg_path = device_config("kiosk-c")
    agent = SyncAgent(load_config(cfg_path))
    config_topic, status_topic = agent.topic_config, agent.topic_status
    watcher = Watcher(broker.port, status_topic)
    applied: list[int] = []
    agent.on_config = lambda c: applied.append(c.version)
    try:
        # retained: a device that is offline now gets it when it connects
        watcher.publish(config_topic, push(7, sync={"batch_size": 25, "heartbeat": 30}), retain=True)
        with running(agent):
            status = wait_for(lambda: next((s for s in watcher.on(status_topic)
                                            if s.get("config", {}) and s["config"]["state"] == "applied"), None),
                              message="status acknowledging config 7")
            assert status["config_version"] == 7 and status["config"] == {"version": 7, "state": "applied",
                                                                          "reason": None}
            assert agent.config.sync.batch_size == 25 and applied == [7]

            watcher.publish(config_topic, push(8, survey={"scale": "stars"}), retain=True)
            status = wait_for(lambda: next((s for s in watcher.on(status_topic)
                                            if (s.get("config") or {}).get("state") == "rejected"), None),
                              message="status rejecting config 8")
            assert status["config"]["version"] == 8
            assert "survey.scale" in status["config"]["reason"] and "'stars'" in status["config"]["reason"]
            assert status["config_version"] == 7, "the old config stays in force"
        assert load_config(cfg_path).version == 7
        assert load_config(cfg_path).sync.batch_size == 25
    finally:
        watcher.publish(config_topic, b"", retain=True)
        watcher.close()


def test_a_push_may_set_the_staff_pin_hash_and_nothing_else_of_staff(staff: Path):
    from smileloop_core.pin import verify_pin

    pin_hash = hash_pin("97531", iterations=1000)
    _, result = apply_push(load_config(staff), push(2, staff={"pin_hash": pin_hash},
                                                       survey={"question": {"en": "How was it?"}}))
    assert result.state == "applied"
    reloaded = load_config(staff)
    assert reloaded.staff.pin_hash == pin_hash and verify_pin("97531", reloaded.staff.pin_hash)
    assert reloaded.survey.question == {"en": "How was it?"}
    assert "97531" not in central_overlay_path(staff).read_text()


@pytest.mark.parametrize(("config", "why"), [
    ({"staff": {"pin": "1234"}}, "staff.pin: central may only set pin_hash of [staff]"),
    ({"staff": {"pin_hash": "1234"}}, "staff.pin_hash: is not a 'pbkdf2_sha256"),
    ({"staff": {"pin_hash": "pbkdf2_sha256$999999999$00$00"}}, "staff.pin_hash: asks for 999999999 iterations"),
    ({"staff": {"pin_hash": 1234}}, "staff.pin_hash: must be a string"),
])
def test_a_bad_staff_push_is_rejected_naming_the_key(staff: Path, config, why: str):
    with pytest.raises(ConfigRejected, match=re.escape(f"config push version 2: {why}")):
        apply_push(load_config(staff), push(2, **config))
    assert not central_overlay_path(staff).exists()


def test_check_push_is_the_check_central_makes_before_it_sends():
    check_push({"survey": {"scale": "nps", "question": {"en": "How was it?"}}, "hours": {"sun": "closed"},
                "sync": {"batch_size": 40}, "staff": {"pin_hash": hash_pin("2468", iterations=1000)}})
    for tables, why in (({"survey": {"scale": "stars"}}, "config push: survey.scale: 'stars' is not one of"),
                        ({"hours": {"mon": "25:00-26:00"}}, "config push: hours.mon: '25:00-26:00' must look like"),
                        ({"broker": {"url": "mqtt://x"}}, "config push: [broker]: central may only set survey, "
                                                          "hours, sync, staff"),
                        ({"survey": "nps"}, "config push: [survey]: must be a table")):
        with pytest.raises(ConfigError, match=re.escape(why)):
            check_push(tables)
