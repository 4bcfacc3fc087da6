"""Outbox → MQTT, with our own reconnect loop, and receipts, config and outcomes back into the device.

One thread does everything: it connects (a fresh paho client per connection, so no stale in-memory
session survives), drives paho with ``client.loop()``, and pumps batches. paho's callbacks therefore
run on this thread and may touch the store and the parts below without locks.

The loop is here; each concern is a part with its own reason to change: :class:`~sync_agent.pump.Pump`
(batches, rate, PUBACKs), :class:`~sync_agent.receipts.Receipts` (central's receipts and their
deadlines), :class:`~sync_agent.housekeeping.Housekeeping` (disk bounds),
:class:`~sync_agent.status.Heartbeat` (the status message) and :class:`~sync_agent.clock_offset.ClockOffset`.
Delivery is end to end: a batch is ``sent`` on the broker's PUBACK, and ``delivered`` only when
central's receipt names it (docs/RELIABILITY.md).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from device import BellListener, DeviceConfig, DeviceStore
from smileloop_core import topics
from smileloop_core.clock import Clock, SystemClock, utc_iso
from smileloop_core.connection import Connection
from smileloop_core.mqtt import Backoff, BrokerSettings, is_failure
from sync_agent.clock_offset import ClockOffset
from sync_agent.config_push import PushResult, apply_push, version_of
from sync_agent.erase import handle_erase
from sync_agent.errors import BrokerUnreachable, ConfigRejected, DeliveryTimeout
from sync_agent.housekeeping import Housekeeping
from sync_agent.limits import AdaptiveBatch, BrokerLimits
from sync_agent.pump import Pump
from sync_agent.receipts import Receipts
from sync_agent.status import Heartbeat, SyncStatus

__all__ = ["SyncAgent", "SyncStatus"]

log = logging.getLogger("smileloop.sync")
DEAF_ROUNDS = 3

IDLE_WAIT = 0.02  # seconds a step waits on the socket (and the doorbell) when nothing woke it


class _AgentConnection(Connection):
    """The shared connection, plus what the broker's CONNACK says about its limits."""

    limits = BrokerLimits()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason_code: Any,
                    properties: object) -> None:
        if not is_failure(reason_code):
            # paho cannot change its own inflight window once connected; the pump keeps under it instead.
            self.limits = BrokerLimits.from_connack(properties)
        super()._on_connect(client, userdata, flags, reason_code, properties)


def broker_settings(config: DeviceConfig) -> list[BrokerSettings]:
    """One :class:`BrokerSettings` per URL of ``[broker] urls``, in order, each with the device's credentials."""
    b = config.broker
    return [BrokerSettings.from_url(url, username=b.username, ca_file=b.ca_file, cert_file=b.cert_file,
                                    key_file=b.key_file).with_password_file(b.password_file) for url in b.urls]


class SyncAgent:
    """Deliver one device's outbox.

    ``run(stop)`` loops until ``stop`` is set; ``drain(timeout)`` returns once everything is receipted.

    >>> SyncAgent(load_config("device.toml")).drain(30).delivered   # doctest: +SKIP
    12
    """

    def __init__(self, config: DeviceConfig, store: DeviceStore | None = None, *, clock: Clock | None = None,
                 rng: random.Random | None = None,
                 settings: BrokerSettings | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.store = store or DeviceStore(config.storage.path, synchronous="NORMAL", clock=self.clock)
        brokers = [settings] if settings is not None else broker_settings(config)
        sync = config.sync
        self.backoff = Backoff(sync.reconnect_min, sync.reconnect_max, rng)
        self.status = SyncStatus(config_version=config.version, batch_size=sync.batch_size)
        self.offset = ClockOffset()
        self.on_config: Callable[[DeviceConfig], None] | None = None  # called after a push is applied
        site, dev = config.site, config.device_id
        self.topic_ratings = topics.ratings(site, dev)
        self.topic_status = topics.status(site, dev)
        self.topic_ack = topics.ack(site, dev)
        self.topic_config = topics.config(site, dev)
        self.topic_erase = topics.erase(site, dev)
        self.topic_outcomes = topics.outcomes(site, config.location)
        will = json.dumps({"v": 1, "state": "offline", "device": dev, "site": site}).encode()
        self.conn = _AgentConnection(brokers, f"dev-{dev}", backoff=self.backoff, on_connect=self._on_connect,
                                     on_message=self._on_message, on_publish=self._on_publish,
                                     will=(self.topic_status, will), name=f"sync {dev}")
        self.pump = Pump(self.store, sync, self.clock, backoff=self.backoff, device_id=dev, site=site,
                         publish=lambda payload: self.conn.publish(self.topic_ratings, payload, qos=1))
        self.receipts = Receipts(sync.ack_timeout)
        self._silent_expiries = 0  # receipt timeouts in a row on this connection with no receipt between
        self.keeper = Housekeeping(self.store, config.storage, self.clock)
        self.heartbeat = Heartbeat(self.status, self.store, self.clock)
        self._wake = threading.Event()
        self._bell: BellListener | None = None  # while running: the Recorder rings it after each durable tap

    @property
    def settings(self) -> BrokerSettings:
        """The broker in use (or tried next): with several in ``[broker] urls``, it moves on when one fails."""
        return self.conn.settings

    @property
    def batch(self) -> AdaptiveBatch:
        """The batch size in use, halved and grown back as the broker allows."""
        return self.pump.batch

    # --- public -------------------------------------------------------------------------------
    def wake(self, *_: object) -> None:
        """Something new is in the outbox: look now instead of at the next poll."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set; never raises for network conditions, only logs and retries."""
        self.store.requeue()  # what was sent but never receipted by a previous run goes again
        try:
            while not stop.is_set():
                self._housekeeping_due()
                if not self._ensure_connected(stop):
                    continue
                self._step(flush=False)
        finally:
            self._close()

    def drain(self, timeout: float) -> SyncStatus:
        """Deliver the whole backlog and return; raises :class:`BrokerUnreachable` or :class:`DeliveryTimeout`.

        The backlog is counted (O(backlog)) only when nothing is left to send or await, not on every step.
        """
        deadline = self.clock.monotonic() + timeout
        self.store.requeue()
        stop = threading.Event()
        try:
            settled = True  # look once before connecting: an empty outbox needs no broker
            while True:
                if settled and self.store.backlog().undelivered == 0:
                    self._refresh_status()
                    return self.status
                if self.clock.monotonic() >= deadline:
                    raise self._drain_failed(timeout)
                self._housekeeping_due()
                if self._ensure_connected(stop, deadline=deadline):
                    self._step(flush=True)
                settled = self.pump.outbox_empty and not self.pump.inflight and not self.receipts.waiting
        finally:
            self._close()

    def receipt_timeout(self) -> float:
        """Seconds to wait for central's receipt of a batch published now (see :meth:`Receipts.timeout`)."""
        return self.receipts.timeout(self.pump.limiter.rate)

    def housekeeping(self) -> None:
        """Prune delivered ratings past retention, and more (oldest first) while space is short; report it.

        Unsent ratings are never pruned: when only they are left, the status says the disk is low.
        """
        report = self.keeper.run()
        s = self.status
        was_low = s.disk_low
        s.pruned += report.pruned
        s.disk_free_mb, s.db_mb, s.disk_low = report.free_mb, report.db_mb, report.low
        s.storage_warning = report.warning
        if report.warning:
            s.last_error = report.warning
        if s.disk_low != was_low:
            self.heartbeat.soon()

    # --- connection ---------------------------------------------------------------------------
    def _drain_failed(self, timeout: float) -> Exception:
        undelivered = self.store.backlog().undelivered
        error = self.status.last_error
        if not self.conn.ever_connected:
            return BrokerUnreachable(
                f"could not reach the broker at {', '.join(b.redacted() for b in self.conn.candidates)}"
                f" within {timeout:g}s"
                f" ({error or 'no answer'}); {undelivered} ratings stay queued")
        return DeliveryTimeout(f"{undelivered} ratings not yet receipted by central after {timeout:g}s"
                               f"{'; last error: ' + error if error else ''}")

    def _ensure_connected(self, stop: threading.Event, deadline: float | None = None) -> bool:
        if deadline is not None:
            # The connection keeps time.monotonic(); hand it the deadline in its own time base.
            deadline = time.monotonic() + (deadline - self.clock.monotonic())
        ok = self.conn.ensure(stop, deadline)
        if not ok:
            self._lost_connection()
            log.info("%d ratings stay queued", self.store.backlog().undelivered)
        return ok

    def _lost_connection(self) -> None:
        self.pump.lost_connection()
        self.status.connected = False
        self.status.last_error = self.conn.last_error

    def _on_connect(self, client: mqtt.Client) -> None:
        self.pump.new_connection()
        limits = self.conn.limits
        self.status.max_packet, self.status.receive_max = limits.max_packet, limits.receive_max
        self.status.connected = True
        self.status.last_connect = utc_iso(self.clock.now())
        self.status.reconnects = self.conn.connects - 1
        self.status.last_error = None
        self._silent_expiries = 0
        client.on_subscribe = self._on_subscribe
        client.subscribe([(self.topic_ack, 1), (self.topic_config, 1), (self.topic_outcomes, 1),
                          (self.topic_erase, 1)])
        self.heartbeat.soon()  # announce "online" at once

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, codes: list[Any],
                      properties: object) -> None:
        """A refused subscription (a NATS node mid-election cannot make its consumer) would leave this connection
        deaf to receipts for good: drop it, so the reconnect loop makes a new one (on the next broker)."""
        if any(is_failure(c) for c in codes):
            self.conn.last_error = "the broker refused a subscription; reconnecting"
            log.warning("%s: %s", self.conn.name, self.conn.last_error)
            client.disconnect()

    def _close(self) -> None:
        if self._bell is not None:
            self._bell.close()
            self._bell = None
        self.pump.inflight.clear()
        self.status.connected = False
        self.conn.close(goodbye=(self.topic_status, self._status_payload("offline")))
        self.heartbeat.save()

    # --- the loop -----------------------------------------------------------------------------
    def _step(self, flush: bool) -> None:
        # Idle waiting happens on the socket (receipts, PUBACKs wake it at once), never on a timer; a tap
        # recorded in this process (``wake``) or another (the doorbell) ends the wait at once.
        if self._bell is None:
            self._bell = BellListener(self.store.path)
        woken = self._wake.is_set() | self._bell.drain()
        self._wake.clear()
        if not self.conn.step(timeout=0.0 if woken else IDLE_WAIT, wake_fd=self._bell.fileno()):
            self._lost_connection()
            return
        now = self.clock.monotonic()
        again = self.receipts.expire(now)
        if again and (n := self.store.requeue(again)):
            log.warning("no receipt from central for %d ratings in time; sending them again", n)
        if again:
            self._deaf_check()
        problem = self.pump.pump(now, self.conn.limits, self.topic_ratings, flush=flush)
        if problem:
            self.status.last_error = problem
            log.error("%s", problem)
        if self.heartbeat.due(now):
            self.conn.publish(self.topic_status, self._status_payload("online"), retain=True)
            self.heartbeat.save()
            self.heartbeat.sent(now, self.config.sync.heartbeat)

    def _deaf_check(self) -> None:
        """With several brokers, a connection that brought no receipt through :data:`DEAF_ROUNDS` receipt
        timeouts in a row is given up for the next broker: a node can accept publishes yet never deliver this
        device's receipts (a NATS node back from a crash, its consumers half made). With one broker nothing
        changes: the ratings are simply sent again."""
        self._silent_expiries += 1
        client = self.conn.client
        if self._silent_expiries >= DEAF_ROUNDS and len(self.conn.candidates) > 1 and client is not None:
            self.conn.last_error = f"no receipt through {self._silent_expiries} receipt timeouts; next broker"
            log.warning("%s: %s", self.conn.name, self.conn.last_error)
            client.disconnect()

    def _housekeeping_due(self) -> None:
        if self.keeper.due():
            self.housekeeping()

    def _on_publish(self, mid: int, reason_code: Any) -> None:
        acked = self.pump.acked(mid, reason_code)
        if acked is None:
            return
        if acked.refused:
            self.status.refused_publishes += 1
            self.status.last_error = acked.refused
            log.error("%s; they stay queued", acked.refused)
            return
        self.status.batch_size = self.batch.size
        flight = acked.flight
        self.receipts.published(flight.ids, number=flight.number, sent=flight.published_mono,
                                now=self.clock.monotonic(), rate=self.pump.limiter.rate)

    # --- messages from central ----------------------------------------------------------------
    def _on_message(self, client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.topic_ack:
            self._silent_expiries = 0
            self._on_receipt(bytes(msg.payload))
        elif msg.topic == self.topic_config:
            self._on_config(bytes(msg.payload))
        elif msg.topic == self.topic_erase:
            self._on_erase(bytes(msg.payload))
        elif msg.topic == self.topic_outcomes:
            items = json.loads(msg.payload).get("items", []) if msg.payload else []
            self.store.replace_outcomes(items, self.clock.now())

    def _on_receipt(self, payload: bytes) -> None:
        receipt = json.loads(payload)
        now = self.clock.now()
        mono = self.clock.monotonic()
        stored = [(str(i), int(r)) for i, r in receipt.get("stored", [])]
        rejected = [(str(i), str(why)) for i, why in receipt.get("rejected", [])]
        named = [i for i, _ in stored] or [i for i, _ in rejected]
        sent = self.receipts.published_at(named)
        if sent is not None and self.offset.measure(receipt.get("ts"), now, sent, mono) is not None:
            best = self.offset.best
            if best is not None:
                self.status.clock_offset, self.status.clock_offset_error = round(best.offset, 3), round(best.error, 3)
        n = self.store.mark_delivered(stored, now) if stored else 0
        k = self.store.mark_rejected(rejected, now) if rejected else 0
        self.receipts.received(named, [i for i, _ in (*stored, *rejected)], mono)
        self.status.delivered += n
        self.status.rejected += k
        if n or k:
            self.status.last_delivery = utc_iso(now)
        for rid, why in rejected:
            log.error("central rejected rating %s: %s", rid, why)

    def _on_config(self, payload: bytes) -> None:
        if not payload:
            return  # the retained push was cleared: central has nothing to say; the config in force stays
        try:
            config, result = apply_push(self.config, payload)
        except ConfigRejected as e:
            result = PushResult(version_of(payload), "rejected", str(e))
            log.error("config push rejected, version %s stays in force: %s", self.config.version, e)
        else:
            if result.state == "applied":
                self._install(config)
                log.info("config version %d applied", config.version)
        self.status.config = result.as_dict()
        self.status.config_version = self.config.version
        self.heartbeat.soon()  # say so at once

    def _on_erase(self, payload: bytes) -> None:
        result = handle_erase(self.store.path, payload)
        if result is None:
            return
        if result.error:
            log.error("erase request not done: %s", result.error)
        self.status.erase = result.as_dict()
        self.heartbeat.soon()  # central reads the answer from the status

    def _install(self, config: DeviceConfig) -> None:
        self.config = config
        sync = config.sync
        self.pump.configure(sync)
        self.receipts.ack_timeout = sync.ack_timeout
        self.keeper.storage = config.storage
        self.backoff.base, self.backoff.cap = sync.reconnect_min, sync.reconnect_max
        if self.on_config is not None:
            try:
                self.on_config(config)
            except Exception:
                log.exception("on_config listener failed")

    # --- status -------------------------------------------------------------------------------
    def _refresh_status(self) -> None:
        self.status.batch_size = self.batch.size
        self.heartbeat.refresh()

    def _status_payload(self, state: str) -> bytes:
        self.status.batch_size = self.batch.size
        return self.heartbeat.payload(state, self.config)
