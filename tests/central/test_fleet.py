"""``smileloop fleet status|push`` on a real store and a real Mosquitto: states from the kept statuses and the org
tree, pushes checked before anything is sent, versioned one higher, retained on each device's config topic."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from central.store import CentralStore
from central.store_fleet import PushLog
from smileloop.cli import cli
from smileloop_core import topics
from smileloop_core.clock import SystemClock
from smileloop_core.pin import verify_pin

ORG = {"sites": {"store-1": {"hours": {"timezone": "Europe/Stockholm"}, "locations": {
    "exit": {"devices": ["kiosk-1", "kiosk-2"]}, "cafe": {"devices": ["kiosk-3", "kiosk-4"]}}}}}


def status(device: str, location: str, state: str = "online", **extra: Any) -> dict[str, Any]:
    return {"v": 1, "state": state, "device": device, "site": "store-1", "location": location,
            "ts": "2026-11-24T09:15:02.113Z", "backlog": 3, "oldest_unsent": "2026-11-24T09:10:00.000Z",
            "disk_free_mb": 5120.4, "version": "0.1.0", "clock_offset": -0.412, "config_version": 2,
            "config": {"version": 2, "state": "applied", "reason": None}, **extra}


@pytest.fixture
def db(tmp_path: Path) -> str:
    """kiosk-1 online now, kiosk-2 last heard an hour ago (silent), kiosk-3 offline, kiosk-4 never seen, and
    kiosk-9 heard from but not in the org tree."""
    path = tmp_path / "central.db"
    store = CentralStore(path)
    now = SystemClock().now()
    store.put_document("org", ORG, now)
    for device, location, state, at in (("kiosk-1", "exit", "online", now),
                                        ("kiosk-2", "exit", "online", now - timedelta(hours=1)),
                                        ("kiosk-3", "cafe", "offline", now), ("kiosk-9", "cafe", "online", now)):
        body = status(device, location, state)
        store.upsert_status("store-1", device, body, json.dumps(body), at)
    store.close()
    return str(path)


def run(*args: object) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args])


def retained(port: int, wait: float = 1.0) -> dict[str, bytes]:
    """Every retained message under smileloop/v1/ the broker holds. The broker sends them right after the
    subscription; a sentinel this client then publishes to itself arrives after them (one connection, in
    order), so its arrival — not a sleep — says they are all here. ``wait`` bounds that."""
    got: dict[str, bytes] = {}
    subscribed, done = threading.Event(), threading.Event()
    sentinel = f"{topics.PREFIX}/_test/{uuid.uuid4().hex}"

    def on_message(_c: Any, _u: Any, m: Any) -> None:
        if m.topic == sentinel:
            done.set()
        elif m.retain:
            got[m.topic] = m.payload

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"look-{uuid.uuid4().hex[:6]}")
    client.on_connect = lambda c, *_: c.subscribe([(f"{topics.PREFIX}/#", 1)])
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert subscribed.wait(5)
        client.publish(sentinel, b"end", qos=1)
        assert done.wait(max(wait, 5.0)), "the sentinel did not come back"
    finally:
        client.disconnect()
        client.loop_stop()
    return got


def test_status_shows_every_device_with_its_state_backlog_disk_software_config_and_clock(db: str):
    rows = json.loads(run("fleet", "status", "--db", db, "--json").output)
    assert [(r["device"], r["location"], r["state"]) for r in rows] == [
        ("kiosk-1", "exit", "online"), ("kiosk-2", "exit", "silent"), ("kiosk-3", "cafe", "offline"),
        ("kiosk-4", "cafe", "never seen"), ("kiosk-9", "cafe", "online")]
    one = rows[0]
    assert (one["backlog"], one["oldest_unsent"], one["disk_free_mb"], one["software"], one["config_version"],
            one["clock_offset"]) == (3, "2026-11-24T09:10:00.000Z", 5120.4, "0.1.0", 2, -0.412)
    assert one["last_seen"] and rows[3]["last_seen"] is None
    text = run("fleet", "status", "--db", db).output
    assert "kiosk-4" in text and "never seen" in text and "-0.412" in text


@pytest.mark.parametrize(("args", "devices"), [
    (("--state", "offline"), ["kiosk-3"]),
    (("--state", "silent"), ["kiosk-2"]),
    (("--state", "never"), ["kiosk-4"]),
    (("--location", "exit"), ["kiosk-1", "kiosk-2"]),
    (("--site", "store-2"), []),
])
def test_status_filters(db: str, args: tuple[str, ...], devices: list[str]):
    result = run("fleet", "status", "--db", db, "--json", *args)
    assert result.exit_code == 0, result.output
    assert [r["device"] for r in json.loads(result.output)] == devices


def test_status_of_a_missing_store_is_an_error(tmp_path: Path):
    result = run("fleet", "status", "--db", tmp_path / "nope.db")
    assert result.exit_code != 0 and not (tmp_path / "nope.db").exists()


def test_dry_run_prints_what_it_would_publish_per_device_with_only_the_pin_hash(db: str, tmp_path: Path):
    (tmp_path / "pin").write_text("97531\n")
    result = run("fleet", "push", "--db", db, "--site", "store-1", "--location", "exit",
                 "--question", "en=How was it?", "--question", "sv=Hur var det?",
                 "--hours", "mon=08:00-20:00", "--hours", "sat=10:00-12:00,13:00-16:00",
                 "--hours", "sun=closed", "--timezone", "Europe/Stockholm", "--scale", "smiley5",
                 "--reasons-negative", "queue, staff", "--languages", "sv,en", "--idle-reset", "30",
                 "--pin-file", tmp_path / "pin", "--dry-run")
    assert result.exit_code == 0, result.output
    sent = json.loads(result.output)
    assert sorted(sent) == [topics.config("store-1", "kiosk-1"), topics.config("store-1", "kiosk-2")]
    body = sent[topics.config("store-1", "kiosk-1")]
    assert (body["v"], body["version"]) == (1, 3), "one higher than config_version 2 the devices report"
    config = body["config"]
    assert config["survey"] == {"question": {"en": "How was it?", "sv": "Hur var det?"}, "scale": "smiley5",
                                "reasons_negative": ["queue", "staff"], "languages": ["sv", "en"], "idle_reset": 30.0}
    assert config["hours"] == {"mon": "08:00-20:00", "sat": ["10:00-12:00", "13:00-16:00"], "sun": "closed",
                               "timezone": "Europe/Stockholm"}
    assert set(config["staff"]) == {"pin_hash"} and verify_pin("97531", config["staff"]["pin_hash"])
    assert "97531" not in result.output
    store = CentralStore(db)
    assert PushLog(store).pushes() == [], "a dry run keeps nothing"
    store.close()


@pytest.mark.parametrize(("args", "message"), [
    (("--scale", "stars"), "error: config push: survey.scale: 'stars' is not one of smiley4, smiley5, nps, csat5"),
    (("--hours", "mon=25:00-26:00"), "error: config push: hours.mon: '25:00-26:00' must look like '08:00-20:00'"),
    (("--timezone", "Mars/Olympus"), "error: config push: hours.timezone: 'Mars/Olympus' is not a known IANA"),
    (("--hours", "funday=closed"), "error: config push: hours.funday: unknown key"),
    (("--idle-reset", "0"), "error: config push: survey.idle_reset: must be greater than 0"),
    (("--question", "How was it?"), "error: --question 'How was it?': write it as LANG=\"text\""),
    (("--device", "kiosk-7", "--scale", "nps"), "error: no device 'kiosk-7' at site store-1"),
    (("--location", "roof", "--scale", "nps"), "error: no devices at store-1/roof"),
    ((), "error: nothing to push"),
])
def test_a_bad_push_is_refused_with_exit_2_before_anything_is_sent(db: str, broker, tmp_path: Path, args, message):
    from smileloop.cli import main

    (tmp_path / "pin").write_text("12\n")  # too short, but never reached: the first fault stops the push
    code = main(["fleet", "push", "--db", db, "--site", "store-1", "--broker", broker.url, *args])
    assert code == 2
    assert retained(broker.port, wait=0.5) == {}, "nothing retained on any config topic"
    store = CentralStore(db)
    assert PushLog(store).pushes() == []
    store.close()


def test_a_bad_pin_is_refused_and_the_messages_name_the_fault(db: str, tmp_path: Path, capsys):
    from smileloop.cli import main

    (tmp_path / "pin").write_text("12ab\n")
    assert main(["fleet", "push", "--db", db, "--site", "store-1", "--pin-file", str(tmp_path / "pin")]) == 2
    assert "digits only" in capsys.readouterr().err


def test_a_push_is_kept_versioned_and_retained_on_each_device_config_topic(db: str, broker):
    result = run("fleet", "push", "--db", db, "--site", "store-1", "--location", "cafe", "--scale", "nps",
                 "--broker", broker.url, "--by", "anna", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"version": 3, "site": "store-1", "devices": ["kiosk-3", "kiosk-4", "kiosk-9"]}
    held = retained(broker.port)
    assert sorted(held) == [topics.config("store-1", d) for d in ("kiosk-3", "kiosk-4", "kiosk-9")]
    assert json.loads(held[topics.config("store-1", "kiosk-4")]) == {"v": 1, "version": 3,
                                                                     "config": {"survey": {"scale": "nps"}}}
    again = run("fleet", "push", "--db", db, "--site", "store-1", "--device", "kiosk-4", "--scale", "csat5",
                "--broker", broker.url, "--json")
    assert json.loads(again.output)["version"] == 4, "one higher than the highest pushed so far"
    store = CentralStore(db)
    kept = PushLog(store).pushes(device="kiosk-4")
    assert [(p.version, p.body, p.pushed_by) for p in kept] == [(4, {"survey": {"scale": "csat5"}}, kept[0].pushed_by),
                                                               (3, {"survey": {"scale": "nps"}}, "anna")]
    store.close()


def test_wait_reports_devices_that_do_not_answer_and_exits_1(db: str, broker):
    result = run("fleet", "push", "--db", db, "--site", "store-1", "--device", "kiosk-4", "--scale", "nps",
                 "--broker", broker.url, "--wait", "0.5")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "kiosk-4  no answer"


def test_an_unreachable_broker_is_exit_1(db: str):
    from smileloop.cli import main

    assert main(["fleet", "push", "--db", db, "--site", "store-1", "--scale", "nps", "--broker",
                 "mqtt://127.0.0.1:1"]) == 1


def test_a_device_answer_is_read_from_its_status():
    from central.fleet import Answer, answer_of

    def kept(**raw: Any) -> Any:
        return {"device_id": "kiosk-1", "raw": json.dumps(raw)}

    assert answer_of(kept(config_version=5, config={"version": 5, "state": "applied"}), 5) == Answer("kiosk-1",
                                                                                                     "applied")
    rejected = kept(config_version=4, config={"version": 5, "state": "rejected", "reason": "survey.scale: …"})
    assert answer_of(rejected, 5) == Answer("kiosk-1", "rejected", "survey.scale: …")
    assert answer_of(kept(config_version=4, config={"version": 4, "state": "applied"}), 5) is None
    assert answer_of(None, 5) is None


def test_a_retired_device_leaves_fleet_status_and_push_targets(tmp_path) -> None:
    from datetime import UTC, datetime

    from central.fleet import fleet_status
    from central.org_admin import OrgAdmin
    from central.store import CentralStore

    store = CentralStore(tmp_path / "central.db")
    admin = OrgAdmin(store, "anna")
    admin.add_site("store-1")
    admin.add_location("store-1", "exit")
    admin.add_device("store-1", "exit", "kiosk-1")
    admin.add_device("store-1", "exit", "kiosk-2")
    admin.set_device_state("store-1", "kiosk-2", "retired")
    rows = fleet_status(store, admin.org(), datetime.now(UTC))
    assert [(r.device, r.state) for r in rows] == [("kiosk-1", "never seen")]
    store.close()
