"""Central on a real Mosquitto: receipts before alerts, redelivery, clock repair, device status, outcomes,
apprise delivery, and two workers on one shared subscription."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central import lifecycle
from central.service import CentralService
from central.store import CentralStore
from smileloop_core import topics
from smileloop_core.clock import parse_utc, utc_iso
from smileloop_core.mqtt import BrokerSettings
from tests.central.conftest import BACKENDS, Receiver, make_store
from tests.conftest import wait_for

pytestmark = pytest.mark.broker


class Peer:
    """A test MQTT client: publishes like a device, records what central sends back."""

    def __init__(self, url: str, subscribe: tuple[str, ...] = ("smileloop/v1/#",)) -> None:
        settings = BrokerSettings.from_url(url)
        self.got: list[tuple[str, dict[str, Any], bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"peer-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect(settings.host, settings.port)
        self.client.loop_start()
        self.client.subscribe([(t, 1) for t in subscribe])
        assert subscribed.wait(10), "test peer could not subscribe"

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.got.append((msg.topic, json.loads(msg.payload) if msg.payload else {}, bool(msg.retain)))

    def on(self, suffix: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p for t, p, _ in self.got if t.endswith(suffix)]

    def publish(self, topic: str, payload: dict[str, Any], retain: bool = False) -> None:
        self.client.publish(topic, json.dumps(payload), qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def message(device: str, *ratings: dict[str, Any], site: str = "store-1", sent: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    m: dict[str, Any] = {"v": 1, "device": device, "site": site, "ratings": list(ratings)}
    if sent:
        m["sent"] = sent
    return m


def rating(value: int, seq: int = 1, location: str = "exit", **over: Any) -> dict[str, Any]:
    r = {"id": str(uuid.uuid4()), "seq": seq, "ts": utc_iso(datetime.now(UTC)), "scale": "smiley4", "value": value,
         "location": location}
    r.update(over)
    return r


def start_service(broker_url: str, store: CentralStore, **kw: Any) -> CentralService:
    kw.setdefault("tick_interval", 3600.0)  # ticks are driven by the tests with their own `now`
    service = CentralService(store, BrokerSettings.from_url(broker_url, connect_timeout=2.0), **kw)
    service.conn.backoff.cap = 1.0
    service.start()
    assert service.wait_ready(10), "central did not subscribe"
    return service


@pytest.fixture
def peer(broker: Any) -> Iterator[Peer]:
    p = Peer(broker.url)
    yield p
    p.close()


@pytest.fixture
def service(broker: Any, tmp_path: Any, receiver: Receiver) -> Iterator[CentralService]:
    store = CentralStore(tmp_path / "central.db")
    s = start_service(broker.url, store, notify_urls=[receiver.url("manager")])
    yield s
    s.stop()
    store.close()


def test_receipt_then_alerts_window_rule_from_ingest_and_apprise_delivery(service, peer, receiver):
    alerts: list[dict[str, Any]] = []
    service.on_alert.append(alerts.append)
    negatives = [rating(1, seq=i, reason="waiting_time") for i in range(1, 5)]
    peer.publish(topics.ratings("store-1", "kiosk-1"), message("kiosk-1", *negatives, rating(4, seq=5)))
    receipt = wait_for(lambda: peer.on("/kiosk-1/ack"), 10, message="receipt")[0]
    assert sorted(i for i, _ in receipt["stored"]) == sorted([r["id"] for r in negatives] + [receipt["stored"][4][0]])
    wait_for(lambda: len(peer.on("/store-1/alerts")) >= 5, 10, message="alerts on the site topic")
    events = {(a["kind"], a["event"]) for a in peer.on("/store-1/alerts")}
    # one negative_rating alert notifies, the next three (same location, within the cooldown) are grouped
    assert events == {("negative_rating", "opened"), ("negative_rating", "grouped"), ("negative_share", "opened")}
    assert service.store.count("alerts") == 5
    # the receipt reached the device before any alert was published
    kinds = [t for t, _, _ in peer.got if t.endswith(("/ack", "/alerts"))]
    assert kinds[0].endswith("/ack")
    # the site manager's phone (a local HTTP receiver via apprise json://) got exactly the two notifying alerts
    wait_for(lambda: len(receiver.requests) == 2, 10, message="two apprise deliveries")
    titles = sorted(r["body"]["title"] for r in receiver.requests)
    assert titles == ["80 % unhappy at store-1 / exit in the last 15 min", "Unhappy visitor at store-1 / exit"]
    apprise_attempts = ("SELECT a.ok FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id "
                        "WHERE d.contact <> 'mqtt'")
    wait_for(lambda: len(service.store.query(apprise_attempts)) == 2, 10, message="two attempts")
    assert [a["ok"] for a in service.store.query(apprise_attempts)] == [1, 1]
    mqtt = service.store.query("SELECT state FROM deliveries WHERE contact = 'mqtt'")
    assert [m["state"] for m in mqtt] == ["sent"] * 2  # the grouped three are published, not recorded
    assert len(alerts) == 5


def test_redelivered_message_stores_once_and_opens_no_second_alert(service, peer):
    m = message("kiosk-1", rating(1, seq=1), rating(2, seq=2, location="cafe"))
    for _ in range(3):
        peer.publish(topics.ratings("store-1", "kiosk-1"), m)
    wait_for(lambda: len(peer.on("/kiosk-1/ack")) == 3, 10, message="three receipts")
    assert service.store.count("ratings") == 2
    assert service.store.count("alerts") == 2  # one per negative rating (different locations: not grouped)
    assert all(len(r["stored"]) == 2 for r in peer.on("/kiosk-1/ack"))


def test_wrong_device_clock_is_repaired_and_the_device_ts_kept(service, peer):
    # The device thinks it is 2001 (dead RTC); the tap was 300 s (monotonic) before the publish.
    r = rating(1, ts="2001-01-01T00:00:00.000Z", boot="b1", mono=4700.0)
    sent = {"ts": "2001-01-01T00:05:00.000Z", "boot": "b1", "mono": 5000.0}
    before = datetime.now(UTC)
    peer.publish(topics.ratings("store-1", "kiosk-1"), message("kiosk-1", r, sent=sent))
    wait_for(lambda: peer.on("/kiosk-1/ack"), 10, message="receipt")
    row = service.store.query("SELECT ts, ts_device, ts_repaired FROM ratings")[0]
    assert row["ts_device"] == "2001-01-01T00:00:00.000Z" and row["ts_repaired"] == 1
    fixed = parse_utc(row["ts"])
    assert before - timedelta(seconds=301) <= fixed <= datetime.now(UTC) - timedelta(seconds=299)


def test_status_topic_feeds_device_health_rules(service, peer):
    status = {"v": 1, "state": "offline", "device": "kiosk-9", "site": "store-2", "location": "exit",
              "ts": utc_iso(datetime.now(UTC)), "backlog": 12, "oldest_unsent": None, "disk_free_mb": 5000.0}
    peer.publish(topics.status("store-2", "kiosk-9"), status, retain=True)
    wait_for(lambda: service.store.statuses(), 10, message="status stored")
    assert service.tick(datetime.now(UTC) + timedelta(minutes=5)) == []
    opened = service.tick(datetime.now(UTC) + timedelta(minutes=11))
    assert [o.alert["kind"] for o in opened] == ["device_offline"]
    wait_for(lambda: peer.on("/store-2/alerts"), 10, message="offline alert published")


def test_resolving_publishes_you_said_we_did_retained(service, peer, broker):
    peer.publish(topics.ratings("store-1", "kiosk-1"), message("kiosk-1", rating(1, reason="waiting_time")))
    wait_for(lambda: service.store.count("alerts") == 1, 10, message="alert")
    alert = service.store.alerts()[0]
    lifecycle.resolve(service.store, alert["id"], "anna", "one till open at lunch", "We opened a second till",
                      datetime.now(UTC))
    service.tick()
    wait_for(lambda: peer.on("/outcomes/exit"), 10, message="outcomes published")
    late = Peer(broker.url, subscribe=(topics.outcomes("store-1", "exit"),))  # a kiosk connecting later
    try:
        got = wait_for(lambda: late.got, 10, message="retained outcomes")
        _topic, body, retained = got[0]
        assert retained and body["v"] == 1
        assert body["items"][0]["text"] == {"en": "You told us about waiting time: We opened a second till.",
                                            "sv": "Ni sa till om väntetid: We opened a second till."}
    finally:
        late.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_on_one_shared_subscription_split_the_load_without_duplicates(broker, tmp_path, peer, backend):
    first = make_store(backend, tmp_path)
    stores = [first, CentralStore(first.target, schema=getattr(first.db, "schema", None))]
    workers = [start_service(broker.url, s, client_id=f"central-{i}", share_group="central")
               for i, s in enumerate(stores)]
    try:
        msgs = [message(f"kiosk-{i}", rating(1, seq=1, location=f"loc-{i}")) for i in range(30)]
        for m in msgs + msgs:  # everything twice: a redelivery may land on the other worker
            peer.publish(topics.ratings("store-1", m["device"]), m)
        wait_for(lambda: len(peer.on("/ack")) == 60, 20, message="60 receipts")
        assert all(w.messages > 5 for w in workers), [w.messages for w in workers]
        assert sum(w.messages for w in workers) == 60
        assert stores[0].count("ratings") == 30
        rows = stores[0].query("SELECT rating_id, count(*) AS n FROM alerts GROUP BY rating_id")
        assert len(rows) == 30 and {r["n"] for r in rows} == {1}
        assert len([a for a in peer.on("/store-1/alerts") if a["event"] == "opened"]) == 30
    finally:
        for w in workers:
            w.stop()
        first.drop()
        for s in stores:
            s.close()


def test_an_alert_raised_while_the_broker_is_down_is_published_after_the_reconnect(service, peer, broker):
    status = {"v": 1, "state": "offline", "device": "kiosk-9", "site": "store-2", "location": "exit"}
    peer.publish(topics.status("store-2", "kiosk-9"), status)
    wait_for(lambda: service.store.statuses(), 10, message="status stored")
    peer.close()
    broker.kill()
    wait_for(lambda: not service.conn.connected, 10, message="central notices the broker is gone")
    [opened] = service.tick(datetime.now(UTC) + timedelta(minutes=11))
    [row] = service.store.query("SELECT state FROM deliveries WHERE contact = 'mqtt'")
    assert row["state"] == "pending"
    broker.start()
    wait_for(lambda: service.conn.connected, 15, message="central reconnects")
    later = Peer(broker.url, subscribe=(topics.alerts("store-2"),))
    try:
        assert service.flush_mqtt() == 1  # what the service's next tick does
        got = wait_for(lambda: later.on("/store-2/alerts"), 10, message="the alert after the reconnect")
        assert got[0]["id"] == opened.alert["id"] and got[0]["kind"] == "device_offline"
        assert service.store.query("SELECT state FROM deliveries WHERE contact = 'mqtt'") == [{"state": "sent"}]
    finally:
        later.close()


def test_an_alert_stored_just_before_a_crash_is_announced_when_central_starts_again(broker, tmp_path, peer, receiver):
    from central import rules
    from central.rules import RuleBook
    from tests.central.conftest import rating as incoming

    store = CentralStore(tmp_path / "central.db")
    now = datetime.now(UTC)
    # stored with its alert in one transaction, then the process died before the receipt and the announcements
    [alert] = store.store_ratings("store-1", "kiosk-1", [incoming(1, ts=now)], now,
                                  rules.rating_rule(RuleBook())).alerts
    alert = alert.alert
    service = start_service(broker.url, store, notify_urls=[receiver.url("manager")], tick_interval=0.2)
    try:
        got = wait_for(lambda: peer.on("/store-1/alerts"), 10, message="the alert on MQTT after the restart")
        assert [a["id"] for a in got] == [alert["id"]]
        wait_for(lambda: receiver.requests, 10, message="the manager told after the restart")
        wait_for(lambda: store.alert(alert["id"])["notified_at"], 10, message="marked notified")
    finally:
        service.stop()
        store.close()
    # and a second restart announces nothing again
    store = CentralStore(tmp_path / "central.db")
    service = start_service(broker.url, store, notify_urls=[receiver.url("manager")], tick_interval=0.2)
    try:
        service.flush_mqtt()
        assert len(receiver.requests) == 1 and len(peer.on("/store-1/alerts")) == 1
        assert store.query("SELECT count(*) AS n FROM deliveries") == [{"n": 2}]
    finally:
        service.stop()
        store.close()


def test_a_device_back_online_closes_its_offline_alert(service, peer):
    status = {"v": 1, "state": "offline", "device": "kiosk-9", "site": "store-2", "location": "exit"}
    peer.publish(topics.status("store-2", "kiosk-9"), status, retain=True)
    wait_for(lambda: service.store.statuses(), 10, message="status stored")
    [opened] = service.tick(datetime.now(UTC) + timedelta(minutes=11))
    peer.publish(topics.status("store-2", "kiosk-9"), {**status, "state": "online"}, retain=True)
    wait_for(lambda: service.store.statuses()[0]["state"] == "online", 10, message="online status stored")
    service.tick(datetime.now(UTC) + timedelta(minutes=12))
    alert = service.store.alert(opened.alert["id"])
    assert (alert["state"], alert["resolved_by"], alert["action"]) == ("resolved", "central", "none needed")
    assert service.store.audit_trail(alert["id"])[-1]["action"] == "recovered"
    wait_for(lambda: [a for a in peer.on("/store-2/alerts") if a["event"] == "recovered"], 10,
             message="the recovery on MQTT")
