"""Outbox → PUBLISH: batches cut to the broker's limits, at a bounded rate, a few in flight at once.

A batch is ``sent`` only on the broker's PUBACK; until then it stays ``queued`` in the store, so a
connection lost with batches in flight loses nothing. Non-negative taps wait up to ``batch_delay`` for
company; a negative goes at once. The send rate is a token bucket at ``max_rate``, halved whenever the
broker says it is busy and restored as it takes our batches (docs/RELIABILITY.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from device import DeviceStore, SyncConfig
from smileloop_core.clock import Clock, utc_iso
from smileloop_core.model import Rating
from smileloop_core.mqtt import Backoff, is_failure, reason_text
from sync_agent.limits import AdaptiveBatch, BrokerLimits

# v5 PUBACK reasons that mean "too much, slow down" rather than "never".
SLOW_DOWN = {0x89, 0x97}  # 137 Server busy, 151 Quota exceeded
MIN_RATE_SCALE = 1 / 64

Publish = Callable[[str], int | None]  # payload → message id, or None when not connected


class RateLimiter:
    """A token bucket of ratings at ``max_rate`` per second, scaled down while the broker is busy.

    >>> bucket = RateLimiter(max_rate=100.0, burst=10, now=0.0)
    >>> bucket.refill(now=1.0); bucket.tokens
    100.0
    """

    def __init__(self, max_rate: float, burst: int, now: float) -> None:
        self.max_rate = max_rate
        self.burst = burst
        self.scale = 1.0  # cut when the broker says it is busy, restored as it takes our batches
        self.tokens = float(burst)
        self._at = now

    @property
    def rate(self) -> float:
        """Ratings per second allowed now."""
        return self.max_rate * self.scale

    def refill(self, now: float) -> None:
        self.tokens = min(max(self.rate, self.burst), self.tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self, n: int) -> None:
        self.tokens -= n

    def slow_down(self) -> None:
        self.scale = max(self.scale / 2, MIN_RATE_SCALE)

    def recover(self) -> None:
        self.scale = min(1.0, self.scale * 1.25)


@dataclass
class Inflight:
    """A batch published and waiting for the broker's PUBACK."""

    revisions: list[tuple[str, int]]
    negative: bool
    published_mono: float
    number: int  # publish order: a receipt for a later batch tells that this one got lost

    @property
    def ids(self) -> list[str]:
        return [i for i, _ in self.revisions]


@dataclass(frozen=True)
class Acked:
    """The broker's answer to one batch: taken (``refused`` None) or refused, with the reason."""

    flight: Inflight
    refused: str | None = None


class Pump:
    """Picks batches from the outbox and publishes them; the caller runs it on its loop's thread.

    ``publish`` is the connection's publish on the ratings topic; tests pass a plain function.
    """

    def __init__(self, store: DeviceStore, sync: SyncConfig, clock: Clock, *, publish: Publish, backoff: Backoff,
                 device_id: str, site: str) -> None:
        self.store = store
        self.sync = sync
        self.clock = clock
        self.publish = publish
        self.backoff = backoff  # shared with the connection: a refused batch waits as a failed connect would
        self.device_id, self.site = device_id, site
        self.batch = AdaptiveBatch(sync.batch_size)
        self.limiter = RateLimiter(sync.max_rate, sync.batch_size, clock.monotonic())
        self.inflight: dict[int, Inflight] = {}
        self.outbox_empty = False  # the last look found nothing queued beyond what is in flight
        self._first_seen: float | None = None  # when a not-yet-full batch of non-negatives was first seen
        self._hold_until = 0.0  # after a refused publish, wait before trying again
        self._published = 0  # batches published, numbering them

    def configure(self, sync: SyncConfig) -> None:
        """A config push changed the sync settings: the next batch follows them."""
        self.sync = sync
        self.batch.set_ceiling(sync.batch_size)
        self.limiter.max_rate, self.limiter.burst = sync.max_rate, sync.batch_size

    def new_connection(self) -> None:
        self.inflight.clear()
        self.batch.new_connection()

    def lost_connection(self) -> None:
        """Whatever was in flight has no PUBACK: it is still ``queued`` in the store and goes again."""
        if self.inflight:
            self.batch.shrink()  # perhaps too big for this broker (3.1.1 says no limits): try smaller
        self.inflight.clear()

    def pump(self, now: float, limits: BrokerLimits, topic: str, *, flush: bool) -> str | None:
        """Publish what the rate, the broker's window and the batch delay allow; a problem to report, or None.

        ``flush``: send a part-filled batch at once (draining), instead of waiting ``batch_delay`` for more.
        """
        self.outbox_empty = False
        if now < self._hold_until:
            return None
        self.limiter.refill(now)
        max_payload = limits.max_payload(topic)
        exclude = {i for f in self.inflight.values() for i, _ in f.revisions}
        while len(self.inflight) < limits.inflight(self.sync.max_inflight) and self.limiter.tokens >= 1:
            size = max(1, min(self.batch.size, int(self.limiter.tokens)))
            batch = self.store.next_batch(size, exclude=exclude)
            if not batch:
                self._first_seen = None
                self.outbox_empty = True
                return None
            negative = any(r.sentiment == "negative" for r in batch)
            if not (flush or negative or len(batch) >= self.batch.size):
                if self._first_seen is None:
                    self._first_seen = now
                if now - self._first_seen < self.sync.batch_delay:
                    return None  # let a few more taps join this batch
            self._first_seen = None
            batch, payload = self._fit(batch, max_payload)
            if payload is None:
                self._hold_until = now + self.backoff.next_delay() + 1.0
                return (f"rating {batch[0].id} alone is larger than the broker's maximum packet "
                        f"size ({limits.max_packet} bytes); it stays queued")
            mid = self.publish(payload)
            if mid is None:
                return None  # not connected any more; the batch is still queued
            revisions = [(r.id, r.rev) for r in batch]
            self._published += 1
            self.inflight[mid] = Inflight(revisions, negative, now, self._published)
            exclude.update(i for i, _ in revisions)
            self.limiter.take(len(batch))
        return None

    def acked(self, mid: int, reason_code: Any) -> Acked | None:
        """The broker's PUBACK for ``mid``: a taken batch is marked ``sent``; None if it is not ours."""
        flight = self.inflight.pop(mid, None)
        if flight is None:
            return None
        if is_failure(reason_code):
            # e.g. 135 Not authorized: the broker did not take it; it stays queued and is never counted.
            if getattr(reason_code, "value", reason_code) in SLOW_DOWN:
                self.limiter.slow_down()
            self._hold_until = self.clock.monotonic() + self.backoff.next_delay() + 1.0
            return Acked(flight, f"broker refused a batch of {len(flight.revisions)}: {reason_text(reason_code)}")
        self.limiter.recover()
        self.batch.grow()
        self.store.mark_sent(flight.revisions, self.clock.now())
        return Acked(flight)

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
        return json.dumps({"v": 1, "device": self.device_id, "site": self.site,
                           "sent": self._sent_stamp(), "ratings": [r.to_wire() for r in batch]},
                          separators=(",", ":"))

    def _sent_stamp(self) -> dict[str, object]:
        """The device clocks at publish time: central measures the wall-clock offset from it."""
        return {"ts": utc_iso(self.clock.now()), "boot": self.clock.boot_id(), "mono": round(self.clock.monotonic(), 3)}
