"""``smileloop fleet push`` to a kiosk in the field, end to end on real parts: central (storing statuses) and the
command on one side of a real Mosquitto; the sync agent and the running Kivy app on the other. The new question
shows, the new staff PIN opens staff mode, the old one no longer does, and ``fleet status`` shows the version."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import paho.mqtt.subscribe as subscribe
import pytest

from kiosk_ui.flow import Timings
from smileloop.cli import main
from smileloop_core import topics
from smileloop_core.clock import SystemClock
from sync_agent.agent import SyncAgent
from tests.conftest import wait_for

pytestmark = pytest.mark.broker

NEW_PIN = "97531"


def test_a_pushed_question_and_pin_reach_the_running_kiosk(kiosk, broker, central, tmp_path: Path, capsys):
    k = kiosk(broker_url=broker.url, clock=SystemClock(),
              timings=Timings(thanks=0.2, outcomes_refresh=0.2, config_check=0.2))
    config = k.flow.config
    site, location, device = config.site, config.location, config.device_id
    db = str(tmp_path / "central.db")  # the running central's store
    central.store.put_document("org", {"sites": {site: {"locations": {location: {"devices": [device]}}}}},
                               SystemClock().now())
    stop = threading.Event()
    agent = SyncAgent(config)
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: central.store.status(site, device), timeout=20, message="the kiosk's status at central")
        assert "How was your visit today?" in k.texts()
        pin_file = tmp_path / "new.pin"
        pin_file.write_text(NEW_PIN + "\n")

        code = main(["fleet", "push", "--db", db, "--site", site, "--location", location, "--question",
                     "en=How was it?", "--question", "sv=Hur var det?", "--pin-file", str(pin_file),
                     "--broker", broker.url, "--wait", "20"])
        out = capsys.readouterr().out
        assert code == 0, out
        version = config.version + 1  # one higher than the version in force on the device
        assert f"config version {version} pushed to 1 device(s) at {site}" in out
        assert out.splitlines()[-1] == f"{device}  applied"

        k.wait(lambda: "How was it?" in k.texts(), timeout=10, message="the pushed question on the screen")
        assert k.flow.config.version == version
        k.tap_text("Svenska")
        assert "Hur var det?" in k.texts()
        k.tap_text("English")

        k.corner(5)
        assert k.screen().name == "pin"
        k.pin("2468")  # the PIN of the staff file: replaced
        assert k.screen().name == "pin" and "Wrong PIN" in k.texts()
        k.pin(NEW_PIN)
        assert k.screen().name == "staff"
        k.tap_text("Back to the survey")

        assert main(["fleet", "status", "--db", db, "--json"]) == 0
        (row,) = json.loads(capsys.readouterr().out)
        assert (row["device"], row["state"], row["config_version"]) == (device, "online", version)
        assert row["config"] == {"version": version, "state": "applied", "reason": None}

        # A push the device would refuse is refused here first (exit 2): nothing new is retained or applied.
        assert main(["fleet", "push", "--db", db, "--site", site, "--scale", "stars", "--broker", broker.url]) == 2
        assert main(["fleet", "push", "--db", db, "--site", site, "--hours", "mon=25:00-26:00",
                     "--broker", broker.url]) == 2
        assert "hours.mon: '25:00-26:00'" in capsys.readouterr().err
        held = subscribe.simple(topics.config(site, device), hostname="127.0.0.1", port=broker.port, retained=True)
        assert json.loads(held.payload)["version"] == version, "the retained push is still the applied one"
        assert k.flow.config.version == version
    finally:
        stop.set()
        thread.join(10)
