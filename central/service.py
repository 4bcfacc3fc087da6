"""Central's MQTT service: ratings and device status in; receipts, alerts and "you said, we did" out.

Per ratings message, in this order: validate → store (one transaction, with the per-rating alerts) →
receipt to the device → window rules and alerts → acknowledge to the source (paho ``manual_ack`` on MQTT, an
explicit JetStream ack from a NATS cluster: central/sources.py). A crash anywhere before the acknowledgement
means the message comes again; the rating ids and the unique indexes make that harmless. Central keeps a
persistent session, so the broker queues ratings while it restarts. Receipts, alerts, config and outcomes go
out on central's MQTT connection whatever the source.

A periodic tick (on the same thread as the MQTT loop, so it may publish) runs what time alone can trigger:
device health, silence, SLA escalation, and publishing outcomes recorded by ``smileloop alerts resolve``.
Deliveries to people run on their own thread so a slow mail server never delays ingest.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt

from central import rules
from central.announce import Announcer
from central.clockfix import DEFAULT_THRESHOLD, repair
from central.errors import CentralError, OrgError, RuleError
from central.ingest import IncomingRating, check_message, only_where_registered
from central.intake import Inbound, Intake
from central.notify import Dispatcher, Send, apprise_send
from central.org import Contact, Org
from central.periodic import TimeDriven
from central.retention import RetentionTask
from central.rulebook import RuleBook
from central.sources import MqttSource, RatingsSource
from central.statuses import StatusKeeper
from central.store import CentralStore, MessageRatings, Rejection
from smileloop_core import topics, wire
from smileloop_core.clock import Clock, SystemClock, utc_iso
from smileloop_core.connection import Connection
from smileloop_core.mqtt import Backoff, BrokerSettings
from smileloop_core.service import BackgroundService

log = logging.getLogger("smileloop.central")


class CentralService(TimeDriven, BackgroundService):
    """``CentralService(CentralStore(path), settings).start()``; ``on_alert`` listeners see every alert raised
    (opened, reopened, grouped, escalated) as it is published on the site's alerts topic."""

    thread_name = "central"

    def __init__(self, store: CentralStore, settings: BrokerSettings | Sequence[BrokerSettings], *,
                 clock: Clock | None = None, source: RatingsSource | None = None,
                 client_id: str = "smileloop-central", share_group: str | None = None,
                 notify_urls: Sequence[str] = (), send: Send = apprise_send, session_expiry: int = 7 * 86400,
                 tick_interval: float = 5.0, silence_interval: float = 60.0, delivery_interval: float = 0.25,
                 clock_threshold: float = DEFAULT_THRESHOLD.total_seconds(), rng: random.Random | None = None,
                 window_interval: float = 0.5, max_batch: int = 200) -> None:
        super().__init__()
        self.window_interval = window_interval
        self._dirty: dict[tuple[str, str], dict[str, datetime]] = {}  # (site, device) → location → until
        self.store = store
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.share_group = share_group
        self.subscription = topics.ALL_RATINGS if not share_group else f"$share/{share_group}/{topics.ALL_RATINGS}"
        self.tick_interval = tick_interval
        self.silence_interval = silence_interval
        self.delivery_interval = delivery_interval
        self.clock_threshold = clock_threshold
        self._deliver_now = threading.Event()
        extra = (Contact(name="--notify", urls=tuple(notify_urls)),) if notify_urls else ()
        self.dispatcher = Dispatcher(store, self.org, send=send, extra=extra)
        # A few central workers, not a fleet: reconnect fast (≤ 5 s), devices wait on central's receipts.
        self.conn = Connection(settings, client_id, backoff=Backoff(0.2, 5.0, rng), on_connect=self._on_connect,
                               on_message=self._on_message, clean_start=False, session_expiry=session_expiry,
                               manual_ack=True, name="central")
        self.announcer = Announcer(store, self.conn, self.dispatcher, wake=self._deliver_now.set)
        self.on_alert = self.announcer.on_alert
        # Ratings from the MQTT subscription, or (a NATS cluster) from the source given; statuses always by MQTT.
        self.mqtt_in = MqttSource(self.conn, [self.subscription] if source is None else [])
        self.source: RatingsSource = source or self.mqtt_in
        self.intake = Intake(self._commit, self._ack, self._dead_letter, store.writable, outage=store.is_outage,
                             max_messages=max_batch)
        self.messages = 0
        self._org: tuple[int, Org] = (-1, Org())
        self._book: tuple[int, RuleBook] = (-1, RuleBook())
        self._delivery_thread: threading.Thread | None = None
        self._last_silence = 0.0
        self._usual: dict[tuple[str, str], tuple[datetime, float | None]] = {}
        self._statuses: list[Inbound] = []
        self.statuses = StatusKeeper(store, self.clock)
        self.retention = RetentionTask(store, self.clock)  # contacts, comments, payloads, records: hourly purge

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
        self.source.start()
        try:
            while not stop.is_set():
                if not self.conn.ensure(stop):
                    continue
                self.conn.step(timeout=0.05 if not self.intake.pending else 0.0, wake_fd=self.source.wake_fd)
                self._take()
                self.intake.flush()
                self._flush_statuses()
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
            for m in self.intake.pending:  # never stored: another worker may take them now
                self._settle(m, ack=False)
            self.intake.pending.clear()
            self.source.close()
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
        client.subscribe([(topic, 1) for topic in (*self.mqtt_in.subscriptions, topics.ALL_STATUS)])

    def _on_message(self, client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
        inbound = Inbound(msg.topic, bytes(msg.payload), msg.mid, msg.qos, conn=self.conn.connects)
        if msg.topic.endswith("/status"):
            self._statuses.append(inbound)
            return
        self.mqtt_in.put(inbound)  # with a NATS source only a stale subscription sends any: stored once all the same

    def _take(self) -> None:
        """What the sources received since the last step, into the group commit."""
        for source in {id(s): s for s in (self.mqtt_in, self.source)}.values():
            for m in source.take():
                self.intake.add(m)
                if self.intake.full:
                    self.intake.flush()

    def _flush_statuses(self) -> None:
        """Statuses received since the last step, in one statement; acknowledged whatever happens (each is
        retained and repeated by the device's heartbeat: never worth holding the broker's window for)."""
        batch, self._statuses = self._statuses, []
        if not batch:
            return
        try:
            self.handle_statuses([(m.topic, m.payload) for m in batch])
        except Exception:
            log.exception("could not keep %d device status(es); the next heartbeats bring them again", len(batch))
        for m in batch:
            self.mqtt_in.ack(m)

    def _ack(self, m: Inbound) -> None:
        self._settle(m, ack=True)

    def _settle(self, m: Inbound, *, ack: bool) -> None:
        """Acknowledge to (or give back to) the source the message came from."""
        source: RatingsSource = m.source or self.mqtt_in
        try:
            source.ack(m) if ack else source.nack(m)
        except Exception:  # unacknowledged, it comes again: stored once all the same
            log.exception("could not %s a message on %s", "acknowledge" if ack else "give back", m.topic[:200])

    def _dead_letter(self, m: Inbound, why: str) -> None:
        self.store.reject(m.topic, m.payload, why, self.clock.now())

    def handle(self, topic: str, payload: bytes, *, defer_windows: bool = False) -> dict[str, Any] | None:
        """Validate, store, receipt, alert one message. Returns the receipt sent (None if rejected whole)."""
        return self.handle_many([(topic, payload)], defer_windows=defer_windows)[0]

    def handle_many(self, messages: Sequence[tuple[str, bytes]], *,
                    defer_windows: bool = False) -> list[dict[str, Any] | None]:
        """Store many messages in one transaction (group commit), then receipts and alerts; their receipts.

        Each negative rating alerts at once, unless it arrived late (a backlog: summarised per location).
        Window rules (shares, counts, streaks, bursts, reasons) read the whole window, so with
        ``defer_windows`` (messages from the broker) they run once per touched location every
        ``window_interval`` instead of once per message: a drain of a long backlog stays linear.
        """
        batch = [Inbound(topic, payload) for topic, payload in messages]
        self._commit(batch)()
        if not defer_windows:
            self.flush_windows()
        return [m.receipt for m in batch]

    def _commit(self, batch: list[Inbound]) -> Callable[[], None]:
        """Store ``batch`` in one transaction with the alerts it opens and their deliveries; the after-commit
        work (receipts, alert messages) to run once it is durable. Raises only if the store failed."""
        self.messages += len(batch)
        now = self.clock.now()
        book = self.book()
        threshold = timedelta(seconds=self.clock_threshold)
        checked = [check_message(m.topic, m.payload) for m in batch]
        rejections: list[Rejection] = []
        parts: list[MessageRatings] = []
        offsets: dict[tuple[str, str, str | None], float | None] = {}
        org = self.org()
        for m, c in zip(batch, checked, strict=True):
            if c.result is None:
                log.warning("rejected message on %s: %s", m.topic[:200], c.reason)
                rejections.append(Rejection(m.topic, m.payload, c.reason or "rejected"))
                continue
            result = c.result
            only_where_registered(result, org)
            for rid, why in [*result.rejected, *result.dropped]:  # dropped: a contact without consent
                log.warning("rejected rating %s from %s/%s: %s", rid, result.site, result.device, why)
                rejections.append(Rejection(m.topic, m.payload, why, rid))
            offset = None
            if result.sent:
                key = (result.site, result.device, result.sent.boot)
                if key not in offsets:
                    offsets[key] = self.statuses.clock_offset(*key)
                offset = offsets[key]
            ratings = repair(result.ratings, result.sent, now, threshold, offset)
            parts.append(MessageRatings(result.site, result.device, ratings))
        with self.store.transaction():
            stored = self.store.store_messages(parts, now, rule=rules.rating_rule(book), late=rules.late_rule(book),
                                               rejections=rejections)
            messages = self.announcer.queue_many([o for b in stored for o in b.alerts], now)
        by_message = iter(stored)
        for c, m in zip(checked, batch, strict=True):
            if c.result is None:
                continue
            done = next(by_message)
            foreign = dict(done.foreign)
            m.receipt = {"v": 1, "ts": utc_iso(now),
                         "stored": [[r.id, r.rev] for r in c.result.ratings if r.id not in foreign],
                         "rejected": [[rid, why] for rid, why in [*c.result.rejected, *done.foreign] if rid]}
            self._mark_dirty(c.result.site, c.result.device, done.new + done.updated, now, book)

        def after() -> None:
            for m in batch:
                if m.receipt is not None:
                    site, device, _ = topics.parse_device_topic(m.topic) or ("", "", "")
                    self.conn.publish(topics.ack(site, device),
                                      wire.receipt(m.receipt["ts"], m.receipt["stored"], m.receipt["rejected"]), qos=1)
            self.announcer.send([m for m in messages if m is not None], now)
        return after

    def _mark_dirty(self, site: str, device: str, touched: list[IncomingRating], now: datetime,
                    book: RuleBook) -> None:
        """Window rules to run for these ratings' locations, at the newest fresh rating's own time; ratings that
        arrived late are in the backlog summary, not in windows that ended long ago."""
        late = rules.late_rule(book).after
        fresh = [r for r in touched if (now - r.ts).total_seconds() < late]
        if not fresh:
            return
        entry = self._dirty.setdefault((site, device), {})
        for r in fresh:
            entry[r.location] = max(entry.get(r.location, r.ts), min(r.ts, now))

    def flush_windows(self, now: datetime | None = None) -> None:
        """Run the window rules deferred by :meth:`handle_many` (the loop calls this every ``window_interval``)."""
        dirty, self._dirty = self._dirty, {}
        for (site, device), locations in dirty.items():
            until = min(max(locations.values()), now or self.clock.now())
            self._window_rules(site, device, set(locations), until)

    def _window_rules(self, site: str, device: str, locations: set[str], now: datetime) -> None:
        book = self.book()
        try:
            candidates = rules.after_ingest(self.store, self.org(), book, site, device, locations, now)
            for opened in rules.raise_candidates(self.store, book, candidates, now):
                self.announcer.announce(opened, now)
        except CentralError:
            log.exception("window rules for %s/%s failed (check `smileloop rules list`)", site, device)

    def handle_status(self, topic: str, payload: bytes) -> None:
        """Keep the latest status of a device (what the offline, backlog and disk rules read)."""
        self.handle_statuses([(topic, payload)])

    def handle_statuses(self, messages: Sequence[tuple[str, bytes]]) -> None:
        self.statuses.handle(messages)
