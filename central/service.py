"""Central's MQTT service: ratings in, receipts and alerts out.

Per message, in this order: validate → store (one transaction) → receipt to the device → alerts
→ acknowledge to the broker (paho ``manual_ack``). A crash anywhere before the acknowledgement
means the message comes again, and the rating ids make that harmless. Central keeps a persistent
session (MQTT v5 session expiry), so the broker queues ratings while central restarts.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt

from central import rules
from central.errors import InvalidMessage
from central.ingest import parse_message
from central.notify import DeliveryWorker, LogNotifier, Notifier
from central.store import AlertRule, CentralStore
from device.clock import Clock, SystemClock, utc_iso
from smileloop import topics
from smileloop.connection import Connection
from smileloop.mqtt import Backoff, BrokerSettings

log = logging.getLogger("smileloop.central")


class CentralService:
    def __init__(self, store: CentralStore, settings: BrokerSettings, *, notifiers: Sequence[Notifier] = (),
                 clock: Clock | None = None, client_id: str = "smileloop-central", share_group: str | None = None,
                 rule: AlertRule = rules.negative_rating, session_expiry: int = 7 * 86400,
                 rng: random.Random | None = None) -> None:
        self.store = store
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.rule = rule
        self.subscription = topics.ALL_RATINGS if not share_group else f"$share/{share_group}/{topics.ALL_RATINGS}"
        self.delivery = DeliveryWorker([LogNotifier(), *notifiers], on_done=self._delivered)
        self.conn = Connection(settings, client_id, backoff=Backoff(0.5, 30.0, rng), on_connect=self._on_connect,
                               on_message=self._on_message, clean_start=False, session_expiry=session_expiry,
                               manual_ack=True, name="central")
        self.on_alert: list[Callable[[dict[str, Any]], None]] = []
        self.messages = 0
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # --- lifecycle ----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self.delivery.start()
        for alert in self.store.unnotified_alerts():  # opened before a crash, never delivered
            self.delivery.submit(alert)
        try:
            while not stop.is_set():
                if not self.conn.ensure(stop):
                    continue
                self.conn.step(timeout=0.05)
        finally:
            self.conn.close()
            self.delivery.stop()

    def start(self) -> CentralService:
        """Run on a background thread (tests, the demo); ``wait_ready`` tells when it is subscribed."""
        self._thread = threading.Thread(target=self.run, args=(self._stop,), name="central", daemon=True)
        self._thread.start()
        return self

    def wait_ready(self, timeout: float = 10.0) -> bool:
        return self._ready.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    # --- MQTT ---------------------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client) -> None:
        client.subscribe(self.subscription, qos=1)
        self._ready.set()

    def _on_message(self, client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
        try:
            self.handle(msg.topic, bytes(msg.payload))
        except Exception:
            # Not stored: no receipt and no acknowledgement, so it comes again (broker or device).
            log.exception("could not store message on %s; it will be delivered again", msg.topic)
            return
        client.ack(msg.mid, msg.qos)

    def handle(self, topic: str, payload: bytes) -> dict[str, Any] | None:
        """Validate, store, receipt, alert. Returns the receipt sent (None if the message was rejected whole)."""
        self.messages += 1
        now = self.clock.now()
        parsed = topics.parse_device_topic(topic)
        if parsed is None or parsed[2] != "ratings":
            self.store.reject(topic, payload, "not a ratings topic", now)
            return None
        site, device, _ = parsed
        try:
            result = parse_message(site, device, payload)
        except InvalidMessage as e:
            log.warning("rejected message on %s: %s", topic, e)
            self.store.reject(topic, payload, str(e), now)
            return None
        for rid, why in result.rejected:
            log.warning("rejected rating %s from %s/%s: %s", rid, site, device, why)
            self.store.reject(topic, payload, why, now, rating_id=rid)
        batch = self.store.store_ratings(site, device, result.ratings, now, rule=self.rule)
        receipt = {"v": 1, "ts": utc_iso(now), "stored": [[r.id, r.rev] for r in result.ratings],
                   "rejected": [[rid, why] for rid, why in result.rejected if rid]}
        self.conn.publish(topics.ack(site, device), json.dumps(receipt, separators=(",", ":")), qos=1)
        for alert in batch.alerts:
            self._raise(alert)
        return receipt

    def _raise(self, alert: dict[str, Any]) -> None:
        wire = {"v": 1, **alert}
        self.conn.publish(topics.alerts(alert["site"]), json.dumps(wire), qos=1)
        for listener in self.on_alert:
            try:
                listener(wire)
            except Exception:
                log.exception("alert listener failed")
        self.delivery.submit(alert)

    def _delivered(self, alert: dict[str, Any]) -> None:
        self.store.mark_notified(alert["id"], self.clock.now())


def alert_summary(alert: dict[str, Any]) -> str:
    d = alert.get("detail") or {}
    return (f"{alert['title']}: {d.get('value')} on {d.get('scale')}"
            f"{', reason ' + d['reason'] if d.get('reason') else ''} (opened {alert.get('opened_at')})")

