"""Device failover: ``[broker] urls`` names several brokers; the agent moves on when one fails and comes back round.

Two independent Mosquittos, each with its own central worker on one shared SQLite store (as two workers would
run): ratings are idempotent by id, so a batch that reached central through the first broker and is sent again
through the second (its receipt was lost with the broker) is still stored once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from central.service import CentralService
from central.store import CentralStore
from device.config import BrokerConfig, load_config
from device.errors import ConfigError
from device.recorder import Recorder
from device.store import DeviceStore
from smileloop_core.connection import Connection
from smileloop_core.mosquitto import Mosquitto
from smileloop_core.mqtt import Backoff, BrokerSettings
from sync_agent.agent import SyncAgent, broker_settings
from tests.conftest import wait_for, write_device_config
from tests.sync.helpers import running

pytestmark = pytest.mark.broker


@pytest.fixture
def two_sites(tmp_path: Path) -> Iterator[tuple[Mosquitto, Mosquitto, Path]]:
    """Two Mosquittos, one central worker on each, both storing into ``central.db``."""
    brokers: list[Mosquitto] = []
    services: list[CentralService] = []
    stores: list[CentralStore] = []
    db = tmp_path / "central.db"
    try:
        for name in ("a", "b"):
            broker = Mosquitto(tmp_path / f"broker-{name}").start()
            brokers.append(broker)
            store = CentralStore(db)
            stores.append(store)
            service = CentralService(store, BrokerSettings.from_url(broker.url, connect_timeout=2.0),
                                     client_id=f"central-{name}")
            service.conn.backoff.cap = 0.5
            services.append(service)
            service.start()
            assert service.wait_ready(10)
        yield brokers[0], brokers[1], db
    finally:
        for service in services:
            service.stop()
        for store in stores:
            store.close()
        for broker in brokers:
            broker.close()


def stored_ids(db: Path) -> list[str]:
    store = CentralStore(db)
    try:
        return [r["id"] for r in store.query("SELECT id FROM ratings")]
    finally:
        store.close()


def test_delivery_moves_to_the_second_broker_and_comes_back_round(tmp_path: Path, two_sites):
    a, b, db = two_sites
    path = write_device_config(tmp_path / "dev", a.url, sync={"batch_size": 10, "max_rate": 300.0})
    text = path.read_text().replace(f'url = "{a.url}"', f'urls = ["{a.url}", "{b.url}"]')
    path.write_text(text)
    cfg = load_config(path)
    assert cfg.broker.urls == (a.url, b.url)
    recorder = Recorder(DeviceStore(cfg.storage.path), cfg)
    ids = [recorder.record(1 + i % 4).id for i in range(400)]
    agent = SyncAgent(cfg)
    with running(agent):
        wait_for(lambda: len(stored_ids(db)) >= 40, timeout=20, message="delivery under way through the first")
        a.kill()  # mid-delivery
        ids += [recorder.record(2).id for _ in range(20)]  # the kiosk keeps recording into the outbox
        wait_for(lambda: recorder.store.backlog().undelivered == 0, timeout=40, message="delivered via the second")
        assert agent.settings.port == b.port
        assert agent.status.reconnects >= 1

        a.start()  # back round: the first broker returns, the second goes
        b.kill()
        ids += [recorder.record(3).id for _ in range(20)]
        wait_for(lambda: recorder.store.backlog().undelivered == 0, timeout=40, message="delivered via the first")
        assert agent.settings.port == a.port
    got = stored_ids(db)
    assert sorted(got) == sorted(ids), "every rating stored exactly once"


def test_urls_in_the_config(tmp_path: Path):
    path = write_device_config(tmp_path, "mqtt://a:1883")
    cfg = load_config(path)
    assert cfg.broker.urls == ("mqtt://a:1883",) and cfg.broker.url == "mqtt://a:1883"
    assert BrokerConfig(url="mqtt://x:1").urls == ("mqtt://x:1",)
    path.write_text(path.read_text().replace('url = "mqtt://a:1883"',
                                             'urls = ["mqtts://a:8883", "mqtts://b:8883?protocol=3.1.1"]'))
    cfg = load_config(path)
    assert cfg.broker.url == "mqtts://a:8883"
    assert [(s.host, s.port, s.v5) for s in broker_settings(cfg)] == [("a", 8883, True), ("b", 8883, False)]
    for bad, problem in (('urls = []', "at least one"), ('urls = ["http://a"]', "must start with mqtt"),
                         ('urls = ["mqtt://a", "mqtt://a"]', "same URL twice"),
                         ('url = "mqtt://a"\nurls = ["mqtt://b"]', "not both")):
        path.write_text(path.read_text().split("[broker]")[0] + "[broker]\n" + bad + "\n")
        with pytest.raises(ConfigError, match=problem):
            load_config(path)


def test_a_failed_attempt_moves_on_and_comes_back_round():
    import threading

    from smileloop_core.mosquitto import reserve_port

    with reserve_port() as r1, reserve_port() as r2:  # held, never listening: connects are refused
        conn = Connection([BrokerSettings.from_url(f"mqtt://127.0.0.1:{p}") for p in (r1.port, r2.port)], "t",
                          backoff=Backoff(0.001, 0.001), on_connect=lambda c: None, on_message=lambda c, m: None)
        seen = []
        for _ in range(4):
            seen.append(conn.settings.port)
            assert not conn.ensure(threading.Event())
        assert seen == [r1.port, r2.port, r1.port, r2.port]
    with pytest.raises(ValueError):
        Connection([], "t", backoff=Backoff(), on_connect=lambda c: None, on_message=lambda c, m: None)
