"""A real Mosquitto started from the config ``smileloop provision broker-config`` writes, on free loopback ports."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from provisioning.broker import BrokerDir, write_broker_config
from provisioning.bundle import issue_bundle, write_bundle
from provisioning.claims import ClaimResponder
from provisioning.devices import create_device
from provisioning.inventory import DeviceSpec, Inventory
from smileloop_core.mosquitto import mosquitto_binary, reserve_port


class BrokerProcess:
    """``mosquitto -c DIR/mosquitto.conf``, exactly as staff would run it."""

    def __init__(self, conf: Path, ports: list[int]) -> None:
        self.conf, self.ports = conf, ports
        self.log = conf.parent / "broker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> BrokerProcess:
        binary = mosquitto_binary()
        if binary is None:
            pytest.fail("mosquitto is not installed (apt-get install mosquitto)")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([binary, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            for port in self.ports:
                while True:
                    if self.proc.poll() is not None:
                        pytest.fail(f"mosquitto exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
                    try:
                        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                            break
                    except OSError:
                        if time.monotonic() > deadline:
                            pytest.fail(f"mosquitto did not listen on {port}: {self.log.read_text()[-2000:]}")
                        time.sleep(0.02)
        except BaseException:
            self.stop()  # a broker that failed to come up is not left running
            raise
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class Setup:
    inventory: Inventory
    dir: BrokerDir
    port: int
    tls_port: int
    broker: BrokerProcess
    root: Path

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def account_password(self, name: str) -> str:
        return self.dir.account_password(name).read_text().strip()

    def new_device(self, device_id: str, location: str = "exit", site: str = "store-1", **kw: Any) -> Path:
        """Create a device and write its bundle; returns the bundle folder."""
        create_device(self.inventory, DeviceSpec(site=site, location=location, device_id=device_id, **kw))
        out = self.root / "bundles" / device_id
        write_bundle(issue_bundle(self.inventory, device_id), out)
        return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("prov")
    inv = Inventory(root / "inventory.db")
    # Both ports stay reserved while the broker lives: no other test worker is handed them in the meantime.
    with reserve_port() as plain, reserve_port() as tls:
        port, tls_port = plain.port, tls.port
        result = write_broker_config(inv, root / "broker", port, tls_port=tls_port,
                                     run_as="root" if os.geteuid() == 0 else None)
        inv.set_settings(local_url=f"mqtt://127.0.0.1:{port}")
        inv.add_site("store-1", timezone="Europe/Stockholm")
        inv.add_location("store-1", "exit")
        inv.add_location("store-1", "entrance")
        broker = BrokerProcess(result.directory.conf, [port, tls_port])
        try:
            yield Setup(inv, result.directory, port, tls_port, broker.start(), root)
        finally:
            broker.stop()
            inv.close()


@pytest.fixture(scope="module")
def responder(setup: Setup) -> Iterator[ClaimResponder]:
    from provisioning.cli import _staff_settings

    r = ClaimResponder(setup.inventory, _staff_settings(setup.inventory, None)).start()
    assert r.wait_ready(10), "claim responder did not subscribe"
    yield r
    r.stop()


@dataclass
class V5Client:
    """A paho MQTT v5 client that records what the broker answered (reason codes are visible under v5)."""

    client: mqtt.Client
    connect_rc: list[Any] = field(default_factory=list)
    puback: dict[int, Any] = field(default_factory=dict)
    suback: dict[int, list[Any]] = field(default_factory=dict)
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, topic: str, payload: Any, retain: bool = False, timeout: float = 5.0) -> Any:
        """Publish QoS 1 and return the PUBACK's reason code."""
        info = self.client.publish(topic, json.dumps(payload) if not isinstance(payload, bytes) else payload,
                                   qos=1, retain=retain)
        deadline = time.monotonic() + timeout
        while info.mid not in self.puback:
            assert time.monotonic() < deadline, f"no PUBACK for {topic}"
            time.sleep(0.01)
        return self.puback[info.mid]

    def subscribe(self, topic: str, timeout: float = 5.0) -> list[Any]:
        _, mid = self.client.subscribe(topic, qos=1)
        deadline = time.monotonic() + timeout
        while mid not in self.suback:
            assert time.monotonic() < deadline, f"no SUBACK for {topic}"
            time.sleep(0.01)
        return self.suback[mid]

    def close(self) -> None:
        self.client.disconnect()
        # paho's network thread may clear itself between loop_stop's check and its join once disconnected
        with contextlib.suppress(AttributeError):
            self.client.loop_stop()


def connect_v5(port: int, username: str | None, password: str | None, *, client_id: str = "",
               tls: dict[str, Any] | None = None, timeout: float = 5.0) -> V5Client:
    """Connect and wait for the CONNACK; ``.connect_rc[0]`` says whether the broker let us in."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.reconnect_delay_set(0.05, 0.1)  # a refused client is closed at once; do not linger in paho's retry sleep
    rec = V5Client(c)
    if username:
        c.username_pw_set(username, password)
    if tls is not None:
        c.tls_set(**tls)
    c.on_connect = lambda cl, u, f, rc, p: rec.connect_rc.append(rc)
    c.on_publish = lambda cl, u, mid, rc, p: rec.puback.__setitem__(mid, rc)
    c.on_subscribe = lambda cl, u, mid, rcs, p: rec.suback.__setitem__(mid, rcs)
    c.on_message = lambda cl, u, m: rec.messages.append((m.topic, bytes(m.payload)))
    c.connect("127.0.0.1", port, keepalive=10)
    c.loop_start()
    deadline = time.monotonic() + timeout
    while not rec.connect_rc and time.monotonic() < deadline:
        if not c.is_connected() and rec.connect_rc:
            break
        time.sleep(0.01)
    return rec
