"""Central's MQTT service: ratings and device status in; receipts, alerts and "you said, we did" out.

Per ratings message, in this order: validate → store (one transaction, with the per-rating alerts) →
receipt to the device → window rules and alerts → acknowledge to the broker (paho ``manual_ack``). A crash
anywhere before the acknowledgement means the message comes again; the rating ids and the unique indexes
make that harmless. Central keeps a persistent session, so the broker queues ratings while it restarts.

A periodic tick (on the same thread as the MQTT loop, so it may publish) runs what time alone can trigger:
device health, silence, SLA escalation, and publishing outcomes recorded by ``smileloop alerts resolve``.
Deliveries to people run on their own thread so a slow mail server never delays ingest.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt

from central import lifecycle, rules, sla
from central.clockfix import DEFAULT_THRESHOLD, repair
from central.errors import CentralError, InvalidMessage, OrgError, RuleError
from central.ingest import parse_message
from central.notify import Dispatcher, Send, apprise_send
from central.org import Contact, Org
from central.rules import RuleBook
from central.store import CentralStore, Opened
from device.clock import Clock, SystemClock, utc_iso
from smileloop import topics
from smileloop.connection import Connection
from smileloop.mqtt import Backoff, BrokerSettings
from smileloop.service import BackgroundService

log = logging.getLogger("smileloop.central")


class CentralService(BackgroundService):
    thread_name = "central"

    """``CentralService(CentralStore(path), settings).start()``; ``on_alert`` listeners see every alert raised
    (opened, reopened, grouped, escalated) as it is published on the site's alerts topic."""

    def __init__(self, store: CentralStore, settings: BrokerSettings, *, clock: Clock | None = None,
                 client_id: str = "smileloop-central", share_group: str | None = None,
                 notify_urls: Sequence[str] = (), send: Send = apprise_send, session_expiry: int = 7 * 86400,
                 tick_interval: float = 5.0, silence_interval: float = 60.0, delivery_interval: float = 0.25,
                 clock_threshold: float = DEFAULT_THRESHOLD.total_seconds(), rng: random.Random | None = None,
                 window_interval: float = 0.5) -> None:
        super().__init__()
        self.window_interval = window_interval
        self._dirty: dict[tuple[str, str], set[str]] = {}
        self.store = store
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.share_group = share_group
        self.subscription = topics.ALL_RATINGS if not share_group else f"$share/{share_group}/{topics.ALL_RATINGS}"
        self.tick_interval = tick_interval
        self.silence_interval = silence_interval
        self.delivery_interval = delivery_interval
        self.clock_threshold = clock_threshold
        extra = (Contact(name="--notify", urls=tuple(notify_urls)),) if notify_urls else ()
        self.dispatcher = Dispatcher(store, self.org, send=send, extra=extra)
        # A few central workers, not a fleet: reconnect fast (≤ 5 s), devices wait on central's receipts.
        self.conn = Connection(settings, client_id, backoff=Backoff(0.2, 5.0, rng), on_connect=self._on_connect,
                               on_message=self._on_message, clean_start=False, session_expiry=session_expiry,
                               manual_ack=True, name="central")
        self.on_alert: list[Callable[[dict[str, Any]], None]] = []
        self.messages = 0
        self._org: tuple[int, Org] = (-1, Org())
        self._book: tuple[int, RuleBook] = (-1, RuleBook())
        self._delivery_thread: threading.Thread | None = None
        self._deliver_now = threading.Event()
        self._last_silence = 0.0
        self._usual: dict[tuple[str, str], tuple[datetime, float | None]] = {}

    # --- configuration (re-read when `smileloop org/rules` change it) ----------------------------
    def org(self) -> Org:
        """The org tree in force; a broken new version is logged and the last good one kept (the commands check
        before they store, so this only guards against hand edits of the database)."""
        doc, version = self.store.document("org")
        if version != self._org[0]:
            try:
                self._org = (version, Org.from_dict(doc))
            except OrgError as e:
                log.error("org tree version %d is not valid (%s); keeping the previous one", version, e)
                self._org = (version, self._org[1])
        return self._org[1]

    def book(self) -> RuleBook:
        """The rule settings in force (a broken version is handled like the org tree's)."""
        doc, version = self.store.document("rules")
        if version != self._book[0]:
            try:
                self._book = (version, RuleBook(doc))
            except RuleError as e:
                log.error("rule settings version %d are not valid (%s); keeping the previous ones", version, e)
                self._book = (version, self._book[1])
        return self._book[1]

    # --- lifecycle ----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set: the MQTT loop and the periodic tick on this thread, deliveries on another."""
        self._delivery_thread = threading.Thread(target=self._deliver_loop, args=(stop,), name="central-delivery",
                                                 daemon=True)
        self._delivery_thread.start()
        for alert in self.store.unnotified_alerts():  # opened just before a crash: finish announcing them
            self.dispatcher.queue(alert, self.clock.now())
            self._publish_alert(alert, "opened")  # a no-op if it was published; else pending until connected
        next_tick = next_windows = time.monotonic()
        try:
            while not stop.is_set():
                if not self.conn.ensure(stop):
                    continue
                self.conn.step(timeout=0.05)
                if self._dirty and time.monotonic() >= next_windows:
                    next_windows = time.monotonic() + self.window_interval
                    try:
                        self.flush_windows()
                    except Exception:
                        log.exception("window rules failed; trying again at the next message or tick")
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self.tick_interval
                    try:
                        self.tick()
                    except Exception:
                        log.exception("periodic tick failed; trying again in %.0fs", self.tick_interval)
        finally:
            self.conn.close()
            self._deliver_now.set()
            self._delivery_thread.join(5)

    def _deliver_loop(self, stop: threading.Event) -> None:
        # Woken as soon as an alert is queued; the interval only paces retries and digests.
        while not stop.is_set():
            self._deliver_now.wait(self.delivery_interval)
            self._deliver_now.clear()
            if stop.is_set():
                return
            try:
                self.dispatcher.run_due(self.clock.now())
            except Exception:
                log.exception("alert delivery pass failed")

    # --- MQTT ---------------------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client) -> None:
        # Ready once the broker has confirmed the subscriptions (SUBACK), not when they are sent.
        client.on_subscribe = lambda *_: self._ready.set()
        # Status is retained, and brokers do not send retained messages to shared subscriptions: every worker
        # reads every status (storing it is idempotent; alerts stay unique through the store).
        client.subscribe([(self.subscription, 1), (topics.ALL_STATUS, 1)])

    def _on_message(self, client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
        try:
            if msg.topic.endswith("/status"):
                self.handle_status(msg.topic, bytes(msg.payload))
            else:
                self.handle(msg.topic, bytes(msg.payload), defer_windows=True)
        except Exception:
            # Not stored: no receipt and no acknowledgement, so it comes again (broker or device).
            log.exception("could not store message on %s; it will be delivered again", msg.topic)
            return
        client.ack(msg.mid, msg.qos)

    def handle(self, topic: str, payload: bytes, *, defer_windows: bool = False) -> dict[str, Any] | None:
        """Validate, store, receipt, alert. Returns the receipt sent (None if the message was rejected whole).

        Each negative rating alerts at once. Window rules (shares, counts, streaks, bursts, reasons) read the
        whole window, so with ``defer_windows`` (messages from the broker) they run once per touched location
        every ``window_interval`` instead of once per message: a drain of a long backlog stays linear.
        """
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
        offset = self.store.clock_offset(site, device, result.sent.boot) if result.sent else None
        ratings = repair(result.ratings, result.sent, now, timedelta(seconds=self.clock_threshold), offset)
        book = self.book()
        batch = self.store.store_ratings(site, device, ratings, now, rule=rules.rating_rule(book))
        receipt = {"v": 1, "ts": utc_iso(now), "stored": [[r.id, r.rev] for r in result.ratings],
                   "rejected": [[rid, why] for rid, why in result.rejected if rid]}
        self.conn.publish(topics.ack(site, device), json.dumps(receipt, separators=(",", ":")), qos=1)
        for alert in batch.alerts:
            self._announce(Opened(alert.pop("_action"), alert), now)
        if batch.new or batch.updated:
            locations = {r.location for r in batch.new + batch.updated}
            if defer_windows:
                self._dirty.setdefault((site, device), set()).update(locations)
            else:
                self._window_rules(site, device, locations, now)
        return receipt

    def flush_windows(self, now: datetime | None = None) -> None:
        """Run the window rules deferred by :meth:`handle` (the loop calls this every ``window_interval``)."""
        dirty, self._dirty = self._dirty, {}
        for (site, device), locations in dirty.items():
            self._window_rules(site, device, locations, now or self.clock.now())

    def _window_rules(self, site: str, device: str, locations: set[str], now: datetime) -> None:
        book = self.book()
        try:
            candidates = rules.after_ingest(self.store, self.org(), book, site, device, locations, now)
            for opened in rules.raise_candidates(self.store, book, candidates, now):
                self._announce(opened, now)
        except CentralError:
            log.exception("window rules for %s/%s failed (check `smileloop rules list`)", site, device)

    def handle_status(self, topic: str, payload: bytes) -> None:
        """Keep the latest status of each device (what the offline, backlog and disk rules read)."""
        parsed = topics.parse_device_topic(topic)
        if parsed is None or not payload:
            return  # an empty retained message clears the topic: nothing to keep
        site, device, _ = parsed
        try:
            status = json.loads(payload)
            if not isinstance(status, dict):
                raise ValueError("not an object")
        except ValueError as e:
            self.store.reject(topic, payload, f"status is not a JSON object: {e}", self.clock.now())
            return
        self.store.upsert_status(site, device, status, payload.decode("utf-8", "replace"), self.clock.now())

    # --- time-driven work -----------------------------------------------------------------------
    def tick(self, now: datetime | None = None, *, silence: bool | None = None) -> list[Opened]:
        """Device health, silence (every ``silence_interval``), SLA escalation, outcomes; what it opened."""
        now = now or self.clock.now()
        org, book = self.org(), self.book()
        if silence is None:
            silence = time.monotonic() - self._last_silence >= self.silence_interval
        if silence:
            self._last_silence = time.monotonic()
            candidates = rules.periodic(self.store, org, book, now, usual_cache=self._usual)
        else:
            candidates = rules.status_rules(self.store, org, book, now)
        opened = rules.raise_candidates(self.store, book, candidates, now)
        for o in opened:
            self._announce(o, now)
        for alert in self.store.alerts(state="live", limit=10_000):
            if alert["kind"] not in rules.HEALTH_KINDS or alert.get("parent_id"):
                continue
            why = rules.recovered(self.store, book, alert, now)
            if why:
                done = lifecycle.auto_resolve(self.store, alert["id"], why, now)
                if done is not None:
                    self._publish_alert(done, "recovered")
        for alert, waited in sla.overdue(self.store, org, book, now):
            up = sla.escalate(self.store, alert, now, waited)
            if up is not None:
                self.dispatcher.queue(up, now, purpose=f"escalation-{up['level']}", level=up["level"])
                self._deliver_now.set()
                self._publish_alert(up, "escalated")
        self.publish_outcomes(now)
        self.flush_mqtt(now)
        return opened

    def publish_outcomes(self, now: datetime) -> int:
        """Publish (retained) the latest "you said, we did" items of each location with new ones."""
        published = 0
        for site, location in self.store.unpublished_outcome_locations():
            body = {"v": 1, "items": self.store.outcomes(site, location)}
            if self.conn.publish(topics.outcomes(site, location), json.dumps(body, ensure_ascii=False), qos=1,
                                 retain=True) is not None:
                self.store.mark_outcomes_published(site, location, now)
                published += 1
        return published

    def _announce(self, opened: Opened, now: datetime) -> None:
        if opened.action in ("repeated", "duplicate"):
            return
        alert = opened.alert
        if opened.notify:
            purpose = "alert" if opened.action == "opened" else f"reopened-{alert.get('reopened', 1)}"
            self.dispatcher.queue(alert, now, purpose=purpose)
            self._deliver_now.set()
        self._publish_alert(alert, opened.action)

    def _publish_alert(self, alert: dict[str, Any], event: str) -> None:
        """Publish on the site's alerts topic, recorded as a delivery; if not connected now, the row stays
        pending and :meth:`flush_mqtt` publishes it after the reconnect."""
        wire = {"v": 1, "event": event, **{k: v for k, v in alert.items() if not k.startswith("_")}}
        payload = json.dumps(wire, ensure_ascii=False)
        topic = topics.alerts(alert["site"])
        step = alert.get("level") if event == "escalated" else alert.get("reopened", 0)
        now = self.clock.now()
        row_id = str(uuid.uuid4())
        with self.store.db.transaction():
            fresh = self.store.db.execute(
                "INSERT INTO deliveries (id, alert_id, purpose, contact, url, state, next_at, created_at, payload) "
                "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (row_id, alert["id"], f"mqtt-{event}-{step}", "mqtt", f"mqtt:{topic}", "pending", utc_iso(now),
                 utc_iso(now), payload))
            if not fresh:
                return  # published before (a redelivery, or another worker)
            self._send_mqtt(row_id, topic, payload, now)
        for listener in self.on_alert:
            try:
                listener(wire)
            except Exception:
                log.exception("alert listener failed")

    def _send_mqtt(self, row_id: str, topic: str, payload: str, now: datetime) -> bool:
        mid = self.conn.publish(topic, payload, qos=1)
        with self.store.db.transaction():
            self.store.db.execute("INSERT INTO delivery_attempts (delivery_id, at, ok, error) VALUES (?,?,?,?)",
                                  (row_id, utc_iso(now), 1 if mid is not None else 0,
                                   None if mid is not None else "not connected to the broker"))
            self.store.db.execute("UPDATE deliveries SET state = ?, attempts = attempts + 1, sent_at = ? WHERE id = ?",
                                  ("sent" if mid is not None else "pending", utc_iso(now) if mid else None, row_id))
        return mid is not None

    def flush_mqtt(self, now: datetime | None = None) -> int:
        """Publish alert messages that could not go out when they were raised (central was disconnected)."""
        if not self.conn.connected:
            return 0
        now = now or self.clock.now()
        sent = 0
        for row in self.store.query("SELECT id, url, payload FROM deliveries WHERE contact = 'mqtt' "
                                    "AND state = 'pending' ORDER BY created_at LIMIT 500"):
            if not self._send_mqtt(row["id"], row["url"].removeprefix("mqtt:"), row["payload"], now):
                break
            sent += 1
        return sent
