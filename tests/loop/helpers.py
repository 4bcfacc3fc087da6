"""Helpers for the end-to-end tests: run the real CLI as a process, watch topics with a real client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def smileloop_process(*args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    """``python -m smileloop ARGS`` as a real OS process (so tests can SIGKILL it)."""
    out = log.open("ab") if log else subprocess.DEVNULL
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "smileloop", *args], stdout=out, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)


def run_smileloop(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "smileloop", *args], capture_output=True, text=True,
                          timeout=timeout)


class Watcher:
    """A real MQTT subscriber collecting JSON messages per topic (retained ones included)."""

    def __init__(self, url_port: int, *topics: str) -> None:
        self.messages: list[tuple[str, Any, bool]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *_: (c.subscribe([(t, 1) for t in topics]), None)[1]
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", url_port)
        self.client.loop_start()
        if not self._ready.wait(10):
            raise AssertionError("watcher could not subscribe")

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, json.loads(msg.payload) if msg.payload else None, bool(msg.retain)))

    def on(self, topic: str) -> list[Any]:
        with self._lock:
            return [m for t, m, _ in self.messages if t == topic]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
