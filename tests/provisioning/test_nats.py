"""The NATS cluster config we write: three nodes started from it on free loopback ports, checked over MQTT 3.1.1.

The same rights as the Mosquitto ACL: a device publishes only its own ratings and status and reads only its own
receipts, config, erase requests and its location's outcomes; a rating published on one node reaches central on
another.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from provisioning.credentials import bcrypt_hash
from provisioning.errors import InvalidInput
from provisioning.inventory import Device
from provisioning.nats import NatsNode, subject, write_nats_config
from smileloop_core import topics
from tests.nats_cluster import NATS, NatsCluster
from tests.provisioning.test_cli import run, staff  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.broker,
              pytest.mark.skipif(not Path(NATS).exists(), reason="nats-server is not installed")]

PASSWORDS = {"central": "central-pw", "kiosk-1": "one-pw", "kiosk-2": "two-pw"}


def device(device_id: str, location: str) -> Device:
    return Device(device_id=device_id, site="store-1", location=location, state="active", scale="smiley4",
                  question={"en": "?"}, languages=("en",), hours={}, timezone="UTC", created_at="2026-12-03",
                  credentials_at=None, revoked_at=None, last_seen=None, last_state=None, cert_serial=None)


DEVICES = [device("kiosk-1", "exit"), device("kiosk-2", "entry")]


class Peer:
    """An MQTT 3.1.1 client that keeps what it receives and the SUBACK codes it gets."""

    def __init__(self, port: int, username: str, password: str, timeout: float = 30.0) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.granted: list[int] = []
        self._lock = threading.Lock()
        self._subacked = threading.Event()
        deadline = time.monotonic() + timeout
        while True:  # a cluster answers MQTT only once JetStream has a leader
            self.client = self._connect(port, username, password)
            if self.client is not None:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{username} could not connect to 127.0.0.1:{port}")
            time.sleep(0.3)

    def _connect(self, port: int, username: str, password: str) -> mqtt.Client | None:
        connected = threading.Event()
        result: list[object] = []
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{username}-{uuid.uuid4().hex[:6]}",
                             protocol=mqtt.MQTTv311)
        client.username_pw_set(username, password)
        client.on_connect = lambda c, u, f, rc, p: (result.append(rc), connected.set())
        client.on_message = lambda c, u, m: self._keep(m)
        client.on_subscribe = lambda c, u, mid, codes, p: (self.granted.extend(int(getattr(x, "value", x))
                                                                                for x in codes), self._subacked.set())
        try:
            client.connect("127.0.0.1", port, keepalive=10)
        except OSError:
            return None
        client.loop_start()
        if connected.wait(5) and result and not getattr(result[0], "is_failure", True):
            return client
        client.loop_stop()
        client.disconnect()
        self.refused = result[0] if result else None
        return None

    def _keep(self, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def subscribe(self, topic: str) -> int:
        self._subacked.clear()
        self.client.subscribe(topic, qos=1)
        assert self._subacked.wait(10), f"no SUBACK for {topic}"
        return self.granted[-1]

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def got(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.messages if t == topic]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def refused(port: int, username: str, password: str) -> bool:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"x-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv311)
    client.username_pw_set(username, password)
    codes: list[object] = []
    done = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: (codes.append(rc), done.set())
    client.on_disconnect = lambda *a: done.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        done.wait(10)
        return not codes or bool(getattr(codes[0], "is_failure", False))
    finally:
        client.loop_stop()
        client.disconnect()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[NatsNode]]:
    """Three nodes from the config we write, each its own process; all stopped at teardown, whatever happens."""
    hashes = {user: bcrypt_hash(pw) for user, pw in PASSWORDS.items()}
    nodes = NatsCluster(tmp_path / "nats", accounts={"central": "central", "claim": "claim"}, devices=DEVICES,
                        passwords=hashes)
    assert nodes.skipped == ["claim"]
    try:
        yield nodes.start().nodes
    finally:
        nodes.close()


def test_the_acl_holds_and_ratings_cross_the_cluster(cluster: list[NatsNode]):
    n1, _, n3 = cluster
    central = Peer(n3.mqtt_port, "central", PASSWORDS["central"])
    one = Peer(n1.mqtt_port, "kiosk-1", PASSWORDS["kiosk-1"])
    two = Peer(n1.mqtt_port, "kiosk-2", PASSWORDS["kiosk-2"])
    try:
        assert central.subscribe(topics.ALL_RATINGS) == 1
        assert one.subscribe(topics.config("store-1", "kiosk-1")) == 1
        assert one.subscribe(topics.outcomes("store-1", "exit")) == 1
        assert one.subscribe(topics.config("store-1", "kiosk-2")) == 0x80, "another device's config"
        assert one.subscribe(topics.outcomes("store-1", "entry")) == 0x80, "another location's outcomes"
        assert one.subscribe("smileloop/v1/#") == 0x80
        time.sleep(0.5)  # consumers propagate across the cluster

        own, forged = topics.ratings("store-1", "kiosk-1"), topics.ratings("store-1", "kiosk-2")
        one.publish(forged, b"forged")  # NATS drops it (3.1.1 has no refusal in a PUBACK)
        one.publish(own, b"mine")  # on n1; central listens on n3
        deadline = time.monotonic() + 15
        while not central.got(own) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert central.got(own) == [b"mine"]
        assert central.got(forged) == []

        central.publish(topics.config("store-1", "kiosk-2"), b"for two", retain=True)
        central.publish(topics.config("store-1", "kiosk-1"), b"for one", retain=True)
        deadline = time.monotonic() + 15
        while not one.got(topics.config("store-1", "kiosk-1")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert one.got(topics.config("store-1", "kiosk-1")) == [b"for one"]
        assert one.got(topics.config("store-1", "kiosk-2")) == []
    finally:
        for peer in (central, one, two):
            peer.close()
    assert refused(n1.mqtt_port, "kiosk-1", "wrong")
    assert refused(n1.mqtt_port, "nobody", "x")


def test_subjects_and_what_is_refused(tmp_path: Path):
    assert subject("smileloop/v1/+/+/ratings") == "smileloop.v1.*.*.ratings"
    assert subject("smileloop/v1/#") == "smileloop.v1.>"
    with pytest.raises(InvalidInput, match="NATS"):
        write_nats_config(tmp_path, [NatsNode("n1", 1, 2, 3)], accounts={}, passwords={},
                          devices=[replace(DEVICES[0], device_id="kiosk.1")])
    with pytest.raises(InvalidInput, match="own name and ports"):
        write_nats_config(tmp_path, [NatsNode("n1", 1, 2, 3), NatsNode("n2", 1, 5, 6)], accounts={},
                          passwords={}, devices=[])
    _, skipped = write_nats_config(tmp_path, [NatsNode("n1", 1, 2, 3)], accounts={}, devices=DEVICES,
                                   passwords={"kiosk-1": "$7$101$mosquitto"})
    assert skipped == ["kiosk-1", "kiosk-2"], "a Mosquitto hash is no use to NATS"


def test_the_cli_writes_a_node_config_each(tmp_path: Path):
    from smileloop.cli import cli

    inv, out = tmp_path / "inventory.db", tmp_path / "nats"
    args = ["provision", "--inventory", str(inv), "broker-config", "--engine", "nats", "--out", str(out),
            "--node", "n1:4222:6222:1883", "--node", "n2:4223:6223:1884", "--node", "n3:4224:6224:1885"]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    n2 = (out / "n2.conf").read_text()
    assert 'mqtt { listen: "127.0.0.1:1884", stream_replicas: 3 }' in n2 and "nats-route://127.0.0.1:6222" in n2
    assert "nats-route://127.0.0.1:6223" not in n2, "no route to itself"
    password = (out / "accounts" / "central.password").read_text()
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert (out / "accounts" / "central.password").read_text() == password, "kept on a re-run"
    assert '"user": "central"' in n2 and password.strip() not in n2, "a hash, never the password"
    bad = CliRunner().invoke(cli, [*args[:-6], "--node", "n1:4222"])
    assert bad.exit_code == 2 and "NAME:CLIENT_PORT" in bad.output
    no_port = CliRunner().invoke(cli, ["provision", "--inventory", str(inv), "broker-config", "--out", str(out)])
    assert no_port.exit_code == 2 and "--port" in no_port.output


def test_issued_devices_carry_a_bcrypt_hash_into_the_nats_config(staff: tuple[Path, Path, int]):  # noqa: F811
    import json
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # the same crypt(3) that hashed it checks it (Python 3.11; the bcrypt package from 3.13)

    inv, tmp, _ = staff
    run(inv, "device", "new", "--site", "store-9", "--location", "exit", "--id", "kiosk-9", "--out",
        str(tmp / "k9"))
    password = next(p for p in (tmp / "k9").rglob("*") if p.is_file() and "pass" in p.name).read_text().strip()
    run(inv, "broker-config", "--engine", "nats", "--out", str(tmp / "nats"), "--node", "n1:4222:6222:1883")
    conf = (tmp / "nats" / "n1.conf").read_text()
    users = json.loads(conf[conf.index("users: ") + 7:conf.rindex("}", 0, conf.rindex("}"))].strip())
    kiosk = next(u for u in users if u["user"] == "kiosk-9")
    assert kiosk["password"].startswith("$2b$06$"), "bcrypt at the device cost"
    assert crypt.crypt(password, kiosk["password"]) == kiosk["password"], "the device's own password"
    assert password not in conf
