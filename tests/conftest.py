"""Fixtures every part's tests share: a real Mosquitto per test, device configs, a running central."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")

from central.service import CentralService
from central.store import CentralStore
from smileloop.mosquitto import Mosquitto
from smileloop.mqtt import BrokerSettings


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
             message: str = "condition") -> Any:
    """Poll ``condition`` until it is truthy; fail the test with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {value!r})")
        time.sleep(interval)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private Mosquitto on a free loopback port; tests may ``kill()`` and ``start()`` it."""
    b = Mosquitto(tmp_path / "broker")
    b.start()
    try:
        yield b
    finally:
        b.kill()


def write_device_config(directory: Path, broker_url: str, **sections: dict[str, Any]) -> Path:
    """A device.toml in ``directory``; ``sections`` override or add tables (e.g. survey={...})."""
    data: dict[str, Any] = {
        "device": {"id": "kiosk-1", "site": "store-1", "location": "exit"},
        "broker": {"url": broker_url},
        "storage": {"path": "device.db"},
        "sync": {"ack_timeout": 3, "batch_delay": 0.2, "reconnect_min": 0.1, "reconnect_max": 1.0},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "device.toml"
    path.write_text(tomli_w.dumps(data))
    return path


@pytest.fixture
def device_config(tmp_path: Path, broker: Mosquitto) -> Callable[..., Path]:
    def make(name: str = "kiosk-1", **sections: dict[str, Any]) -> Path:
        sections.setdefault("device", {}).setdefault("id", name)
        return write_device_config(tmp_path / name, broker.url, **sections)
    return make


@pytest.fixture
def central(tmp_path: Path, broker: Mosquitto) -> Iterator[CentralService]:
    """Central on its own thread, subscribed to the test broker, storing in a tmp SQLite file."""
    store = CentralStore(tmp_path / "central.db")
    service = CentralService(store, BrokerSettings.from_url(broker.url, connect_timeout=2.0))
    service.conn.backoff.cap = 1.0
    service.start()
    assert service.wait_ready(10), "central did not subscribe"
    try:
        yield service
    finally:
        service.stop()
        store.close()
