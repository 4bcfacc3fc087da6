"""The whole closed loop on real parts: a tap on the device → sync agent → Mosquitto → central → the manager's
phone; the manager resolves → "you said, we did" back in the device's store for the kiosk to show."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from central import lifecycle
from central.store import CentralStore
from device.config import load_config
from device.recorder import Recorder
from device.store import DeviceStore
from sync_agent.agent import SyncAgent
from tests.central.conftest import Receiver
from tests.central.test_service import start_service
from tests.conftest import wait_for

pytestmark = pytest.mark.broker


def test_tap_to_phone_and_resolution_back_to_the_kiosk(broker, tmp_path, device_config, receiver: Receiver):
    store = CentralStore(tmp_path / "central.db")
    contacts = [{"name": "exit-lead", "urls": [receiver.url("exit-lead")]}]
    store.put_document("org", {"sites": {"store-1": {"locations": {"exit": {"contacts": contacts}}}}},
                       datetime.now(UTC))
    service = start_service(broker.url, store, tick_interval=0.2)
    config = load_config(device_config("kiosk-1", survey={"response_interval": 0}))
    device = DeviceStore(config.storage.path)
    recorder = Recorder(device, config)
    agent = SyncAgent(config, DeviceStore(config.storage.path))
    recorder.on_record(agent.wake)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        recorder.record(1, reason="waiting_time")
        [req] = wait_for(lambda: receiver.requests, 15, message="the exit lead's phone")
        assert req["body"]["title"] == "Unhappy visitor at store-1 / exit"
        [alert] = store.alerts()
        lifecycle.acknowledge(store, alert["id"], "exit-lead", service.clock.now())
        lifecycle.resolve(store, alert["id"], "exit-lead", "one till at lunch", "We opened a second till",
                          service.clock.now())
        items = wait_for(lambda: device.outcomes(), 15, message="the outcome in the device store")
        assert items[0]["text"] == {"en": "You told us about waiting time: We opened a second till.",
                                    "sv": "Ni sa till om väntetid: We opened a second till."}
    finally:
        stop.set()
        thread.join(10)
        service.stop()
        store.close()
