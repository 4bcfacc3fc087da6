"""Last seen: the retained status every device keeps on the broker, read once and kept in the inventory.

A device's status is retained, so one short subscription returns the newest status of every device at once;
no long-running listener is needed to answer "is this kiosk alive?".
"""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt

from provisioning.errors import BrokerRefused
from provisioning.inventory import Inventory
from smileloop_core import topics
from smileloop_core.connection import Connection
from smileloop_core.mqtt import Backoff, BrokerSettings


def fetch_statuses(settings: BrokerSettings, *, quiet: float = 0.5, timeout: float = 10.0) -> dict[str, dict]:
    """device id → its retained status; stops ``quiet`` seconds after the last one arrived."""
    found: dict[str, dict] = {}
    last = [time.monotonic()]

    def on_message(client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
        parsed = topics.parse_device_topic(msg.topic)
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        if parsed is not None and isinstance(body, dict):
            found[parsed[1]] = body
            last[0] = time.monotonic()

    def on_connect(client: mqtt.Client) -> None:
        client.subscribe(topics.ALL_STATUS, qos=1)

    conn = Connection(settings, "smileloop-provision-status", backoff=Backoff(0.2, 1.0),
                      on_connect=on_connect, on_message=on_message,
                      name="status")
    deadline = time.monotonic() + timeout
    stop = threading.Event()
    try:
        while not conn.ensure(stop, deadline):
            if time.monotonic() >= deadline:
                raise BrokerRefused(f"could not read statuses from {settings.redacted()}: {conn.last_error}")
        last[0] = time.monotonic()
        while time.monotonic() < min(deadline, last[0] + quiet):
            if not conn.step(0.05):
                break
    finally:
        conn.close()
    return found


def refresh_last_seen(inventory: Inventory, settings: BrokerSettings, **kwargs: float) -> int:
    """Store each device's newest status time and state; returns how many inventory devices reported."""
    seen = 0
    for device_id, status in fetch_statuses(settings, **kwargs).items():
        ts, state = status.get("ts"), status.get("state", "?")
        if inventory.record_seen(device_id, ts if isinstance(ts, str) else None, str(state)):
            seen += 1
    return seen
