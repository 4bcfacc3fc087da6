"""The kiosk in the real loop: touches → device store → sync agent → Mosquitto → central, and
"you said, we did" back from the broker onto the screen."""

from __future__ import annotations

import json
import threading

import paho.mqtt.publish as publish
import pytest

from kiosk_ui.flow import Timings
from smileloop_core import topics
from smileloop_core.clock import SystemClock
from sync_agent.agent import SyncAgent
from tests.conftest import wait_for

pytestmark = pytest.mark.broker


def test_a_kiosk_answer_reaches_central_and_the_outcome_comes_back_to_the_screen(kiosk, broker, central):
    k = kiosk(broker_url=broker.url, clock=SystemClock(), timings=Timings(thanks=0.2, outcomes_refresh=0.2))
    config = k.flow.config
    stop = threading.Event()
    agent = SyncAgent(config)  # its own connection to device.db, as the separate sync process has
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        k.touch(k.face(1))
        k.tap_text("Waiting time")
        k.type("slow")
        k.tap_text("Send")
        assert k.screen().name == "thanks"
        row = wait_for(lambda: central.store.query("SELECT * FROM ratings WHERE rev = 2"), timeout=20,
                       message="the amended rating stored by central")[0]
        assert (row["device_id"], row["location"], row["value"], row["reason"], row["comment"]) == \
               (config.device_id, config.location, 1, "waiting_time", "slow")
        wait_for(lambda: k.device.store.all_ratings()[0]["state"] == 2, timeout=20,
                 message="central's receipt for rev 2 on the device")

        body = {"v": 1, "items": [{"id": "o-1", "resolved_at": "2026-11-24T10:00:00Z",
                                   "text": {"en": "You said the queue was long. We opened a second till.",
                                            "sv": "Ni sa att kön var lång. Vi öppnade en andra kassa."}}]}
        publish.single(topics.outcomes(config.site, config.location), json.dumps(body), qos=1, retain=True,
                       hostname="127.0.0.1", port=broker.port)
        k.wait(lambda: "You said the queue was long. We opened a second till." in k.texts(), timeout=20,
               message="the outcome on the start screen")
        k.tap_text("Svenska")
        assert "Ni sa att kön var lång. Vi öppnade en andra kassa." in k.texts()
    finally:
        stop.set()
        thread.join(10)
