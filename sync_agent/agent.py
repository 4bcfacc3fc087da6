"""Outbox → MQTT, with our own reconnect loop, and receipts back into the outbox.

One thread does everything: it connects (a fresh paho client per connection, so no stale in-memory
session survives), drives paho with ``client.loop()``, and pumps batches. paho's callbacks therefore
run on this thread and may touch the store and our bookkeeping without locks.

Delivery is end to end: a batch is ``sent`` on the broker's PUBACK, and ``delivered`` only when
central's receipt names it. A rating with no receipt after ``ack_timeout`` is queued again.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from device.clock import Clock, SystemClock, utc_iso
from device.config import DeviceConfig
from device.store import DeviceStore
from smileloop import __version__, topics
from smileloop.connection import Connection
from smileloop.mqtt import Backoff, BrokerSettings, is_failure, reason_text
from sync_agent.errors import BrokerUnreachable, DeliveryTimeout

log = logging.getLogger("smileloop.sync")


@dataclass
class SyncStatus:
    """What staff mode and the status heartbeat show about delivery."""

    connected: bool = False
    backlog: int = 0
    oldest_unsent: str | None = None
    last_connect: str | None = None
    last_delivery: str | None = None
    last_error: str | None = None
    delivered: int = 0
    rejected: int = 0
    refused_publishes: int = 0
    reconnects: int = 0
    config_version: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Inflight:
    revisions: list[tuple[str, int]]
    negative: bool


@dataclass
class _Awaiting:
    deadline: float
    ids: list[str] = field(default_factory=list)


class SyncAgent:
    """Deliver one device's outbox.

    ``run(stop)`` loops until ``stop`` is set; ``drain(timeout)`` returns once everything is receipted.
    """

    def __init__(self, config: DeviceConfig, store: DeviceStore | None = None, *, clock: Clock | None = None,
                 rng: random.Random | None = None,
                 settings: BrokerSettings | None = None) -> None:
        self.config = config
        self.store = store or DeviceStore(config.storage.path, synchronous="NORMAL")
        self.clock: Clock = clock or SystemClock()
        self.settings = settings or BrokerSettings.from_url(
            config.broker.url, username=config.broker.username, ca_file=config.broker.ca_file,
            cert_file=config.broker.cert_file, key_file=config.broker.key_file,
        ).with_password_file(config.broker.password_file)
        sync = config.sync
        self.backoff = Backoff(sync.reconnect_min, sync.reconnect_max, rng)
        self.status = SyncStatus(config_version=config.version)
        self._wake = threading.Event()
        self._inflight: dict[int, _Inflight] = {}
        self._awaiting: deque[_Awaiting] = deque()
        self._awaiting_ids: set[str] = set()
        self._first_seen: float | None = None  # when a not-yet-full batch of non-negatives was first seen
        self._hold_until = 0.0  # after a refused publish, wait before trying again
        self._next_heartbeat = 0.0
        self._started = self.clock.monotonic()
        self._tokens = float(sync.batch_size)
        self._tokens_at = self.clock.monotonic()
        self.on_config: Callable[[bytes], None] | None = None
        site, dev = config.site, config.device_id
        self.topic_ratings = topics.ratings(site, dev)
        self.topic_status = topics.status(site, dev)
        self.topic_ack = topics.ack(site, dev)
        self.topic_config = topics.config(site, dev)
        self.topic_outcomes = topics.outcomes(site, config.location)
        will = json.dumps({"v": 1, "state": "offline", "device": dev, "site": site}).encode()
        self.conn = Connection(self.settings, f"dev-{dev}", backoff=self.backoff, on_connect=self._on_connect,
                               on_message=self._on_message, on_publish=self._on_publish,
                               will=(self.topic_status, will), name=f"sync {dev}")

    # --- public -------------------------------------------------------------------------------
    def wake(self, *_: object) -> None:
        """Something new is in the outbox: look now instead of at the next poll."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set; never raises for network conditions, only logs and retries."""
        self.store.requeue()  # what was sent but never receipted by a previous run goes again
        try:
            while not stop.is_set():
                if not self._ensure_connected(stop):
                    continue
                self._step(flush=False)
        finally:
            self._close()

    def drain(self, timeout: float) -> SyncStatus:
        """Deliver the whole backlog and return; raises :class:`BrokerUnreachable` or :class:`DeliveryTimeout`."""
        deadline = time.monotonic() + timeout
        self.store.requeue()
        stop = threading.Event()
        next_check = 0.0
        try:
            while True:
                if time.monotonic() >= next_check:  # counting is O(backlog): not on every step
                    backlog = self.store.backlog()
                    next_check = time.monotonic() + 0.05
                    if backlog.undelivered == 0:
                        self._refresh_status()
                        return self.status
                if time.monotonic() >= deadline:
                    if not self.conn.ever_connected:
                        raise BrokerUnreachable(
                            f"could not reach the broker at {self.settings.redacted()} within {timeout:g}s"
                            f" ({self.status.last_error or 'no answer'}); {backlog.undelivered} ratings stay"
                            " queued")
                    raise DeliveryTimeout(
                        f"{backlog.undelivered} ratings not yet receipted by central after {timeout:g}s"
                        f"{'; last error: ' + self.status.last_error if self.status.last_error else ''}")
                if not self._ensure_connected(stop, deadline=deadline):
                    continue
                self._step(flush=True)
        finally:
            self._close()

    # --- connection ---------------------------------------------------------------------------
    def _ensure_connected(self, stop: threading.Event, deadline: float | None = None) -> bool:
        ok = self.conn.ensure(stop, deadline)
        if not ok:
            # Whatever was in flight has no PUBACK: it is still ``queued`` in the store and goes again.
            self._inflight.clear()
            self.status.connected = False
            self.status.last_error = self.conn.last_error
            log.info("%d ratings stay queued", self.store.backlog().undelivered)
        return ok

    def _on_connect(self, client: mqtt.Client) -> None:
        self._inflight.clear()
        self.status.connected = True
        self.status.last_connect = utc_iso(self.clock.now())
        self.status.reconnects = self.conn.connects - 1
        self.status.last_error = None
        client.subscribe([(self.topic_ack, 1), (self.topic_config, 1), (self.topic_outcomes, 1)])
        self._next_heartbeat = 0.0  # announce "online" at once

    def _close(self) -> None:
        self._inflight.clear()
        self.status.connected = False
        self.conn.close(goodbye=(self.topic_status, self._status_payload("offline")))

    # --- the pump -----------------------------------------------------------------------------
    def _step(self, flush: bool) -> None:
        if not self.conn.step():
            self._inflight.clear()
            self.status.connected = False
            self.status.last_error = self.conn.last_error
            return
        now = self.clock.monotonic()
        self._expire_receipts(now)
        self._pump(now, flush)
        if now >= self._next_heartbeat:
            self.conn.publish(self.topic_status, self._status_payload("online"), retain=True)
            self.store.save_agent_status(self.status.as_dict(), self.clock.now())
            self._next_heartbeat = now + self.config.sync.heartbeat
        if not self._inflight and not self._wake.is_set():
            self._wake.wait(0.05)
        self._wake.clear()

    def _pump(self, now: float, flush: bool) -> None:
        sync = self.config.sync
        if now < self._hold_until:
            return
        self._refill_tokens(now)
        exclude = {i for f in self._inflight.values() for i, _ in f.revisions}
        while len(self._inflight) < sync.max_inflight and self._tokens >= 1:
            size = max(1, min(sync.batch_size, int(self._tokens)))
            batch = self.store.next_batch(size, exclude=exclude)
            if not batch:
                self._first_seen = None
                return
            negative = any(r.sentiment == "negative" for r in batch)
            if not (flush or negative or len(batch) >= sync.batch_size):
                if self._first_seen is None:
                    self._first_seen = now
                if now - self._first_seen < sync.batch_delay:
                    return  # let a few more taps join this batch
            self._first_seen = None
            payload = json.dumps({"v": 1, "device": self.config.device_id, "site": self.config.site,
                                  "sent": self._sent_stamp(), "ratings": [r.to_wire() for r in batch]},
                                 separators=(",", ":"))
            mid = self.conn.publish(self.topic_ratings, payload, qos=1)
            if mid is None:
                return  # not connected any more; the batch is still queued
            revisions = [(r.id, r.rev) for r in batch]
            self._inflight[mid] = _Inflight(revisions, negative)
            exclude.update(i for i, _ in revisions)
            self._tokens -= len(batch)

    def _sent_stamp(self) -> dict[str, object]:
        """The device clocks at publish time: central measures the wall-clock offset from it."""
        return {"ts": utc_iso(self.clock.now()), "boot": self.clock.boot_id(), "mono": round(self.clock.monotonic(), 3)}

    def _refill_tokens(self, now: float) -> None:
        rate = self.config.sync.max_rate
        self._tokens = min(max(rate, self.config.sync.batch_size), self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now

    def _on_publish(self, mid: int, reason_code: Any) -> None:
        flight = self._inflight.pop(mid, None)
        if flight is None:
            return
        if is_failure(reason_code):
            # e.g. 135 Not authorized: the broker did not take it; it stays queued and is never counted.
            self.status.refused_publishes += 1
            self.status.last_error = f"broker refused a batch of {len(flight.revisions)}: {reason_text(reason_code)}"
            log.error("%s; they stay queued", self.status.last_error)
            self._hold_until = self.clock.monotonic() + self.backoff.next_delay() + 1.0
            return
        self.store.mark_sent(flight.revisions, self.clock.now())
        ids = [i for i, _ in flight.revisions]
        self._awaiting.append(_Awaiting(self.clock.monotonic() + self._receipt_timeout(), ids))
        self._awaiting_ids.update(ids)

    def _receipt_timeout(self) -> float:
        return self.config.sync.ack_timeout

    def _expire_receipts(self, now: float) -> None:
        expired: list[str] = []
        while self._awaiting and self._awaiting[0].deadline <= now:
            entry = self._awaiting.popleft()
            expired.extend(i for i in entry.ids if i in self._awaiting_ids)
        if expired:
            self._awaiting_ids.difference_update(expired)
            again = self.store.requeue(expired)
            if again:
                log.warning("no receipt from central for %d ratings after %.0fs; sending again", again,
                            self._receipt_timeout())

    # --- messages from central ----------------------------------------------------------------
    def _on_message(self, client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.topic_ack:
            self._on_receipt(bytes(msg.payload))
        elif msg.topic == self.topic_config and self.on_config is not None:
            self.on_config(bytes(msg.payload))
        elif msg.topic == self.topic_outcomes:
            items = json.loads(msg.payload).get("items", []) if msg.payload else []
            self.store.replace_outcomes(items, self.clock.now())

    def _on_receipt(self, payload: bytes) -> None:
        receipt = json.loads(payload)
        now = self.clock.now()
        stored = [(str(i), int(r)) for i, r in receipt.get("stored", [])]
        rejected = [(str(i), str(why)) for i, why in receipt.get("rejected", [])]
        n = self.store.mark_delivered(stored, now) if stored else 0
        k = self.store.mark_rejected(rejected, now) if rejected else 0
        self._awaiting_ids.difference_update(i for i, _ in stored)
        self._awaiting_ids.difference_update(i for i, _ in rejected)
        self.status.delivered += n
        self.status.rejected += k
        if n or k:
            self.status.last_delivery = utc_iso(now)
        for rid, why in rejected:
            log.error("central rejected rating %s: %s", rid, why)

    # --- status -------------------------------------------------------------------------------
    def _refresh_status(self) -> None:
        backlog = self.store.backlog()
        self.status.backlog = backlog.undelivered
        self.status.oldest_unsent = backlog.oldest_unsent_ts

    def _status_payload(self, state: str) -> bytes:
        self._refresh_status()
        disk = shutil.disk_usage(self.store.path.parent)
        return json.dumps({
            "v": 1, "state": state, "device": self.config.device_id, "site": self.config.site,
            "location": self.config.location, "ts": utc_iso(self.clock.now()),
            "backlog": self.status.backlog, "oldest_unsent": self.status.oldest_unsent,
            "disk_free_mb": round(disk.free / 1e6, 1), "version": __version__,
            "uptime": round(self.clock.monotonic() - self._started, 1),
            "config_version": self.status.config_version, "last_error": self.status.last_error,
        }).encode()
