"""Outbox → MQTT, with our own reconnect loop, and receipts, config and outcomes back into the device.

One thread does everything: it connects (a fresh paho client per connection, so no stale in-memory
session survives), drives paho with ``client.loop()``, and pumps batches. paho's callbacks therefore
run on this thread and may touch the store and our bookkeeping without locks.

Delivery is end to end: a batch is ``sent`` on the broker's PUBACK, and ``delivered`` only when
central's receipt names it. A rating with no receipt in time is queued again; the time allowed grows
with the number of ratings already waiting for receipts, so a long backlog is not sent twice over.
The backlog drains at ``sync.max_rate`` at most, in batches cut to the broker's limits (docs/RELIABILITY.md).
"""

from __future__ import annotations

import heapq
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import paho.mqtt.client as mqtt

from device.clock import Clock, SystemClock, parse_utc, utc_iso
from device.config import DeviceConfig
from device.doorbell import BellListener
from device.errors import StoreError
from device.model import Rating
from device.store import DeviceStore
from smileloop import __version__, topics
from smileloop.connection import Connection
from smileloop.mqtt import Backoff, BrokerSettings, is_failure, reason_text
from sync_agent.clock_offset import ClockOffset
from sync_agent.config_push import PushResult, apply_push
from sync_agent.errors import BrokerUnreachable, ConfigRejected, DeliveryTimeout
from sync_agent.limits import AdaptiveBatch, BrokerLimits

log = logging.getLogger("smileloop.sync")

# v5 PUBACK reasons that mean "too much, slow down" rather than "never".
_SLOW_DOWN = {0x89, 0x97}  # 137 Server busy, 151 Quota exceeded
HOUSEKEEPING_EVERY = 60.0  # seconds between retention pruning and disk checks
LOW_DISK_EVERY = 5.0  # … and while space is short, so freshly delivered rows make room soon
CLOCK_STEP = 2.0  # seconds of wall-vs-monotonic disagreement that count as the wall clock being stepped


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
    config: dict[str, Any] | None = None  # the last push: version, applied/unchanged/rejected, reason
    clock_offset: float | None = None  # seconds to add to this device's wall clock to get central's
    clock_offset_error: float | None = None
    disk_free_mb: float | None = None
    db_mb: float | None = None
    disk_low: bool = False
    storage_warning: str | None = None  # set while space is short; outlives a reconnect, unlike last_error
    pruned: int = 0
    batch_size: int = 0
    max_packet: int | None = None
    receive_max: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Inflight:
    revisions: list[tuple[str, int]]
    negative: bool
    published_mono: float
    number: int  # publish order: a receipt for a later batch tells that this one got lost


@dataclass(order=True)
class _Awaiting:
    deadline: float
    published_mono: float = field(compare=False)
    number: int = field(compare=False)
    ids: list[str] = field(default_factory=list, compare=False)


class _AgentConnection(Connection):
    """The shared connection, plus what the broker's CONNACK says about its limits."""

    limits = BrokerLimits()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason_code: Any,
                    properties: object) -> None:
        if not is_failure(reason_code):
            # paho cannot change its own inflight window once connected; the pump keeps under it instead.
            self.limits = BrokerLimits.from_connack(properties)
        super()._on_connect(client, userdata, flags, reason_code, properties)


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
        self.status = SyncStatus(config_version=config.version, batch_size=sync.batch_size)
        self.batch = AdaptiveBatch(sync.batch_size)
        self.offset = ClockOffset()
        self._wake = threading.Event()
        self._bell: BellListener | None = None  # while running: the Recorder rings it after each durable tap
        self._inflight: dict[int, _Inflight] = {}
        self._awaiting: list[_Awaiting] = []  # a heap by deadline
        self._awaiting_by_id: dict[str, _Awaiting] = {}
        self._first_seen: float | None = None  # when a not-yet-full batch of non-negatives was first seen
        self._hold_until = 0.0  # after a refused publish, wait before trying again
        self._next_heartbeat = 0.0
        self._next_housekeeping = 0.0
        self._started = self.clock.monotonic()
        self._tokens = float(sync.batch_size)
        self._tokens_at = self.clock.monotonic()
        self._rate_scale = 1.0  # cut when the broker says it is busy, restored as it takes our batches
        self._receipts: deque[tuple[float, int]] = deque()  # (when, ratings) of recent receipts
        self._last_receipt_mono: float | None = None
        self._published = 0  # batches published, numbering them
        self._newest_receipted = 0  # the latest-published batch central has receipted
        self._silent_rounds = 0  # timeouts in a row with no receipt at all: each doubles the next wait
        self._wall_mark = (self.clock.now(), self.clock.monotonic())
        self.on_config: Callable[[DeviceConfig], None] | None = None  # called after a push is applied
        site, dev = config.site, config.device_id
        self.topic_ratings = topics.ratings(site, dev)
        self.topic_status = topics.status(site, dev)
        self.topic_ack = topics.ack(site, dev)
        self.topic_config = topics.config(site, dev)
        self.topic_outcomes = topics.outcomes(site, config.location)
        will = json.dumps({"v": 1, "state": "offline", "device": dev, "site": site}).encode()
        self.conn = _AgentConnection(self.settings, f"dev-{dev}", backoff=self.backoff, on_connect=self._on_connect,
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
                self._housekeeping_due()
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
                self._housekeeping_due()
                if not self._ensure_connected(stop, deadline=deadline):
                    continue
                self._step(flush=True)
        finally:
            self._close()

    def receipt_timeout(self) -> float:
        """Seconds to wait for central's receipt of a batch published now.

        ``ack_timeout`` plus the time central needs for the ratings already waiting ahead of it, at the
        receipt rate seen so far (or ``max_rate`` before any): a long backlog is not re-sent while central is
        still working through it. While central says nothing at all, ``ack_timeout`` doubles with each
        fruitless round, so a kiosk whose central is down does not pile copies into the broker's queue for it.
        At most twenty times ``ack_timeout``.
        """
        sync = self.config.sync
        rate = sync.max_rate * self._rate_scale
        seen = self._receipt_rate()
        if seen is not None:
            rate = min(rate, max(seen, 1.0))
        extra = len(self._awaiting_by_id) / rate
        return min(sync.ack_timeout * 2 ** self._silent_rounds + extra, 20 * sync.ack_timeout)

    def _receipt_rate(self) -> float | None:
        """Ratings receipted per second over the last ten seconds (None before two receipts)."""
        if len(self._receipts) < 2:
            return None
        span = max(self._receipts[-1][0] - self._receipts[0][0], 1.0)
        return sum(n for _, n in self._receipts) / span

    # --- connection ---------------------------------------------------------------------------
    def _ensure_connected(self, stop: threading.Event, deadline: float | None = None) -> bool:
        ok = self.conn.ensure(stop, deadline)
        if not ok:
            # Whatever was in flight has no PUBACK: it is still ``queued`` in the store and goes again.
            self._lost_connection()
            self.status.last_error = self.conn.last_error
            log.info("%d ratings stay queued", self.store.backlog().undelivered)
        return ok

    def _lost_connection(self) -> None:
        if self._inflight:
            self.batch.shrink()  # perhaps too big for this broker (3.1.1 says no limits): try smaller
        self._inflight.clear()
        self.status.connected = False

    def _on_connect(self, client: mqtt.Client) -> None:
        self._inflight.clear()
        self.batch.new_connection()
        limits = self.conn.limits
        self.status.max_packet, self.status.receive_max = limits.max_packet, limits.receive_max
        self.status.connected = True
        self.status.last_connect = utc_iso(self.clock.now())
        self.status.reconnects = self.conn.connects - 1
        self.status.last_error = None
        client.subscribe([(self.topic_ack, 1), (self.topic_config, 1), (self.topic_outcomes, 1)])
        self._next_heartbeat = 0.0  # announce "online" at once

    def _close(self) -> None:
        if self._bell is not None:
            self._bell.close()
            self._bell = None
        self._inflight.clear()
        self.status.connected = False
        self.conn.close(goodbye=(self.topic_status, self._status_payload("offline")))
        self._save_status()

    def _save_status(self) -> None:
        """Leave the status in the device store too, for staff mode and ``smileloop sync --status``."""
        try:
            self.store.save_agent_status(self.status.as_dict(), self.clock.now())
        except StoreError as e:  # a full disk must not stop delivery, which is what frees it
            log.warning("could not save the agent status: %s", e)

    # --- the pump -----------------------------------------------------------------------------
    def _step(self, flush: bool) -> None:
        # Idle waiting happens on the socket (receipts, PUBACKs wake it at once), never on a timer; a tap
        # recorded in this process (``wake``) skips the wait so a negative goes out without delay.
        if self._bell is None:
            self._bell = BellListener(self.store.path)
        woken = self._wake.is_set() | self._bell.drain()
        self._wake.clear()
        if not self.conn.step(timeout=0.0 if woken else 0.02, wake_fd=self._bell.fileno()):
            self._lost_connection()
            self.status.last_error = self.conn.last_error
            return
        now = self.clock.monotonic()
        self._expire_receipts(now)
        self._pump(now, flush)
        if now >= self._next_heartbeat:
            self._heartbeat(now)

    def _heartbeat(self, now: float) -> None:
        self.conn.publish(self.topic_status, self._status_payload("online"), retain=True)
        self._save_status()
        self._next_heartbeat = now + self.config.sync.heartbeat

    def _pump(self, now: float, flush: bool) -> None:
        sync = self.config.sync
        if now < self._hold_until:
            return
        self._refill_tokens(now)
        limits = self.conn.limits
        max_payload = limits.max_payload(self.topic_ratings)
        exclude = {i for f in self._inflight.values() for i, _ in f.revisions}
        while len(self._inflight) < limits.inflight(sync.max_inflight) and self._tokens >= 1:
            size = max(1, min(self.batch.size, int(self._tokens)))
            batch = self.store.next_batch(size, exclude=exclude)
            if not batch:
                self._first_seen = None
                return
            negative = any(r.sentiment == "negative" for r in batch)
            if not (flush or negative or len(batch) >= self.batch.size):
                if self._first_seen is None:
                    self._first_seen = now
                if now - self._first_seen < sync.batch_delay:
                    return  # let a few more taps join this batch
            self._first_seen = None
            batch, payload = self._fit(batch, max_payload)
            if payload is None:
                self.status.last_error = (f"rating {batch[0].id} alone is larger than the broker's maximum packet "
                                          f"size ({limits.max_packet} bytes); it stays queued")
                log.error("%s", self.status.last_error)
                self._hold_until = now + self.backoff.next_delay() + 1.0
                return
            mid = self.conn.publish(self.topic_ratings, payload, qos=1)
            if mid is None:
                return  # not connected any more; the batch is still queued
            revisions = [(r.id, r.rev) for r in batch]
            self._published += 1
            self._inflight[mid] = _Inflight(revisions, negative, now, self._published)
            exclude.update(i for i, _ in revisions)
            self._tokens -= len(batch)

    def _fit(self, batch: list[Rating], max_payload: int | None) -> tuple[list[Rating], str | None]:
        """Encode ``batch``, cutting it until it fits the broker's maximum packet size (None: not even one)."""
        payload = self._encode(batch)
        while max_payload is not None and len(payload.encode()) > max_payload:
            if len(batch) == 1:
                return batch, None
            keep = int(len(batch) * max_payload / len(payload.encode()) * 0.9)
            batch = batch[:max(1, min(keep, len(batch) - 1))]
            self.batch.fit(len(batch))
            payload = self._encode(batch)
        return batch, payload

    def _encode(self, batch: list[Rating]) -> str:
        return json.dumps({"v": 1, "device": self.config.device_id, "site": self.config.site,
                           "sent": self._sent_stamp(), "ratings": [r.to_wire() for r in batch]},
                          separators=(",", ":"))

    def _sent_stamp(self) -> dict[str, object]:
        """The device clocks at publish time: central measures the wall-clock offset from it."""
        return {"ts": utc_iso(self.clock.now()), "boot": self.clock.boot_id(), "mono": round(self.clock.monotonic(), 3)}

    def _refill_tokens(self, now: float) -> None:
        sync = self.config.sync
        rate = sync.max_rate * self._rate_scale
        self._tokens = min(max(rate, sync.batch_size), self._tokens + (now - self._tokens_at) * rate)
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
            if getattr(reason_code, "value", reason_code) in _SLOW_DOWN:
                self._rate_scale = max(self._rate_scale / 2, 1 / 64)
            self._hold_until = self.clock.monotonic() + self.backoff.next_delay() + 1.0
            return
        self._rate_scale = min(1.0, self._rate_scale * 1.25)
        self.batch.grow()
        self.status.batch_size = self.batch.size
        self.store.mark_sent(flight.revisions, self.clock.now())
        entry = _Awaiting(self.clock.monotonic() + self.receipt_timeout(), flight.published_mono, flight.number,
                          [i for i, _ in flight.revisions])
        heapq.heappush(self._awaiting, entry)
        for i in entry.ids:
            self._awaiting_by_id[i] = entry

    def _expire_receipts(self, now: float) -> None:
        """Send again what waited too long for a receipt — unless central is visibly still working through
        what came before it: a batch is given up on when a later one was receipted (it was lost on the way),
        or when no receipt at all came for ``ack_timeout`` (central or the broker lost it). Re-sending what a
        slow central is still queueing would only slow it down further."""
        ack_timeout = self.config.sync.ack_timeout
        progressing = self._last_receipt_mono is not None and now - self._last_receipt_mono < ack_timeout
        expired: list[str] = []
        later: list[_Awaiting] = []
        while self._awaiting and self._awaiting[0].deadline <= now:
            entry = heapq.heappop(self._awaiting)
            live = [i for i in entry.ids if self._awaiting_by_id.get(i) is entry]
            if not live:
                continue
            if progressing and entry.number > self._newest_receipted:
                entry.deadline = now + ack_timeout
                later.append(entry)
            else:
                expired.extend(live)
        for entry in later:
            heapq.heappush(self._awaiting, entry)
        if expired:
            if not progressing:
                self._silent_rounds = min(self._silent_rounds + 1, 5)
            for i in expired:
                del self._awaiting_by_id[i]
            again = self.store.requeue(expired)
            if again:
                log.warning("no receipt from central for %d ratings in time; sending them again", again)

    # --- messages from central ----------------------------------------------------------------
    def _on_message(self, client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.topic_ack:
            self._on_receipt(bytes(msg.payload))
        elif msg.topic == self.topic_config:
            self._on_config(bytes(msg.payload))
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
        self._measure_offset(receipt.get("ts"), named, now, mono)
        entries = [self._awaiting_by_id[i] for i in named if i in self._awaiting_by_id]
        if entries:
            self._newest_receipted = max(self._newest_receipted, *(e.number for e in entries))
        n = self.store.mark_delivered(stored, now) if stored else 0
        k = self.store.mark_rejected(rejected, now) if rejected else 0
        for i, _ in (*stored, *rejected):
            self._awaiting_by_id.pop(i, None)
        self._note_receipt_rate(len(stored) + len(rejected), mono)
        self.status.delivered += n
        self.status.rejected += k
        if n or k:
            self.status.last_delivery = utc_iso(now)
        for rid, why in rejected:
            log.error("central rejected rating %s: %s", rid, why)

    def _measure_offset(self, central_ts: object, ids: list[str], now: Any, mono: float) -> None:
        entry = next((self._awaiting_by_id[i] for i in ids if i in self._awaiting_by_id), None)
        if entry is None or not isinstance(central_ts, str):
            return
        try:
            central = parse_utc(central_ts)
        except ValueError:
            return
        self._check_wall_step(now, mono)
        self.offset.add(central, now, mono - entry.published_mono, mono)
        best = self.offset.best
        if best is not None:
            self.status.clock_offset, self.status.clock_offset_error = round(best.offset, 3), round(best.error, 3)

    def _check_wall_step(self, now: Any, mono: float) -> None:
        """A wall clock stepped since the last look (NTP, a staff fix) voids the older offset samples."""
        wall0, mono0 = self._wall_mark
        if abs((now - wall0).total_seconds() - (mono - mono0)) > CLOCK_STEP:
            log.info("the device's wall clock was stepped; measuring its offset afresh")
            self.offset.reset()
        self._wall_mark = (now, mono)

    def _note_receipt_rate(self, count: int, mono: float) -> None:
        self._last_receipt_mono = mono
        self._silent_rounds = 0
        self._receipts.append((mono, count))
        while self._receipts and self._receipts[0][0] < mono - 10.0:
            self._receipts.popleft()

    def _on_config(self, payload: bytes) -> None:
        if not payload:
            return  # the retained push was cleared: central has nothing to say; the config in force stays
        try:
            config, result = apply_push(self.config, payload)
        except ConfigRejected as e:
            result = PushResult(_version_of(payload), "rejected", str(e))
            log.error("config push rejected, version %s stays in force: %s", self.config.version, e)
        else:
            if result.state == "applied":
                self._install(config)
                log.info("config version %d applied", config.version)
        self.status.config = result.as_dict()
        self.status.config_version = self.config.version
        self._next_heartbeat = 0.0  # say so at once

    def _install(self, config: DeviceConfig) -> None:
        self.config = config
        sync = config.sync
        self.batch.set_ceiling(sync.batch_size)
        self.backoff.base, self.backoff.cap = sync.reconnect_min, sync.reconnect_max
        if self.on_config is not None:
            try:
                self.on_config(config)
            except Exception:
                log.exception("on_config listener failed")

    # --- disk bounds --------------------------------------------------------------------------
    def _housekeeping_due(self) -> None:
        now = self.clock.monotonic()
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + HOUSEKEEPING_EVERY
            self.housekeeping()

    def housekeeping(self) -> None:
        """Prune delivered ratings past retention, and more (oldest first) while space is short; report it.

        Unsent ratings are never pruned: when only they are left, the status says the disk is low.
        """
        storage = self.config.storage
        try:
            pruned = self.store.prune(self.clock.now() - timedelta(days=storage.retention_days))
        except StoreError as e:
            log.warning("retention pruning failed: %s", e)
            pruned = 0
        space = self.store.space()
        while space.free_mb < storage.min_free_mb:
            freed = self.store.prune_oldest(1000)
            if not freed:
                break
            pruned += freed
            space = self.store.space()
        self.status.pruned += pruned
        self.status.disk_free_mb, self.status.db_mb = space.free_mb, space.db_mb
        was_low, self.status.disk_low = self.status.disk_low, space.free_mb < storage.min_free_mb
        self.status.storage_warning = None
        if self.status.disk_low:
            backlog = self.store.backlog().undelivered
            self.status.storage_warning = self.status.last_error = (
                f"storage low: {space.free_mb:g} MB free (minimum {storage.min_free_mb:g}); "
                f"{backlog} unsent ratings kept, nothing delivered left to prune")
            log.error("%s", self.status.storage_warning)
            self._next_housekeeping = self.clock.monotonic() + LOW_DISK_EVERY
        if pruned:
            log.info("pruned %d delivered ratings", pruned)
        if self.status.disk_low != was_low:
            self._next_heartbeat = 0.0

    # --- status -------------------------------------------------------------------------------
    def _refresh_status(self) -> None:
        backlog = self.store.backlog()
        self.status.backlog = backlog.undelivered
        self.status.oldest_unsent = backlog.oldest_unsent_ts
        self.status.batch_size = self.batch.size

    def _status_payload(self, state: str) -> bytes:
        self._refresh_status()
        now = self.clock.now()
        space = self.store.space()
        self.status.disk_free_mb, self.status.db_mb = space.free_mb, space.db_mb
        s = self.status
        oldest_age = (now - parse_utc(s.oldest_unsent)).total_seconds() if s.oldest_unsent else None
        return json.dumps({
            "v": 1, "state": state, "device": self.config.device_id, "site": self.config.site,
            "location": self.config.location, "ts": utc_iso(now),
            "backlog": s.backlog, "oldest_unsent": s.oldest_unsent,
            "oldest_unsent_age": round(oldest_age, 1) if oldest_age is not None else None,
            "disk_free_mb": round(space.free_mb, 1), "db_mb": round(space.db_mb, 1), "disk_low": s.disk_low,
            "version": __version__, "uptime": round(self.clock.monotonic() - self._started, 1),
            "boot": self.clock.boot_id(), "boot_uptime": round(self.clock.monotonic(), 1),
            "clock_offset": s.clock_offset, "clock_offset_error": s.clock_offset_error,
            "config_version": s.config_version, "config": s.config,
            "delivered": s.delivered, "refused_publishes": s.refused_publishes, "reconnects": s.reconnects,
            "batch_size": s.batch_size, "storage_warning": s.storage_warning,
            "last_error": s.last_error or s.storage_warning,
        }).encode()


def _version_of(payload: bytes) -> int | None:
    """The version a push claims, if it can be read at all (to name it in the rejection)."""
    try:
        version = json.loads(payload).get("version")
    except (ValueError, AttributeError):
        return None
    return version if isinstance(version, int) and not isinstance(version, bool) else None
