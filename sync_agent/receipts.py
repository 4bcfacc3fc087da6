"""Batches the broker has taken, waiting for central's receipt, and when to give up on them.

A batch is only ``delivered`` when central's receipt names it; one with no receipt in time is sent
again. The time allowed grows with the ratings already waiting ahead of it (at the receipt rate seen),
and doubles with each round in which central said nothing at all, so a long backlog or a central that
is down does not get every rating twice. Pure bookkeeping: the caller moves rows in the store.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field

RATE_WINDOW = 10.0  # seconds of receipts the receipt rate is measured over
MAX_SILENT_ROUNDS = 5  # ack_timeout doubles at most this many times …
MAX_TIMEOUT_FACTOR = 20  # … and the time allowed never exceeds this many ack_timeouts


@dataclass(order=True)
class _Awaiting:
    deadline: float
    published_mono: float = field(compare=False)
    number: int = field(compare=False)  # publish order: a receipt for a later batch tells this one got lost
    ids: list[str] = field(default_factory=list, compare=False)


class Receipts:
    """Deadlines for published batches, on monotonic seconds the caller reads from its clock.

    >>> r = Receipts(ack_timeout=15.0)
    >>> r.published(["a", "b"], number=1, sent=100.0, now=100.1, rate=2000.0)
    >>> r.expire(now=200.0)
    ['a', 'b']
    """

    def __init__(self, ack_timeout: float) -> None:
        self.ack_timeout = ack_timeout  # replaced when a config push changes it
        self._heap: list[_Awaiting] = []  # by deadline
        self._by_id: dict[str, _Awaiting] = {}
        self._recent: deque[tuple[float, int]] = deque()  # (when, ratings) of recent receipts
        self._last_receipt: float | None = None
        self._newest_receipted = 0  # the latest-published batch central has receipted
        self._silent_rounds = 0  # timeouts in a row with no receipt at all: each doubles the next wait

    @property
    def waiting(self) -> int:
        """Ratings published and not yet receipted."""
        return len(self._by_id)

    def timeout(self, rate: float) -> float:
        """Seconds to wait for central's receipt of a batch published now.

        ``ack_timeout`` plus the time central needs for the ratings already waiting ahead of it, at the
        receipt rate seen so far (or ``rate``, the send rate, before any): a long backlog is not re-sent while
        central is still working through it. While central says nothing at all, ``ack_timeout`` doubles with
        each fruitless round, so a kiosk whose central is down does not pile copies into the broker's queue.
        """
        seen = self.receipt_rate()
        if seen is not None:
            rate = min(rate, max(seen, 1.0))
        extra = len(self._by_id) / rate
        return min(self.ack_timeout * 2 ** self._silent_rounds + extra, MAX_TIMEOUT_FACTOR * self.ack_timeout)

    def receipt_rate(self) -> float | None:
        """Ratings receipted per second over the last :data:`RATE_WINDOW` seconds (None before two receipts)."""
        if len(self._recent) < 2:
            return None
        span = max(self._recent[-1][0] - self._recent[0][0], 1.0)
        return sum(n for _, n in self._recent) / span

    def published(self, ids: list[str], *, number: int, sent: float, now: float, rate: float) -> None:
        """The broker took batch ``number`` (published at ``sent``): wait for central's receipt of ``ids``."""
        entry = _Awaiting(now + self.timeout(rate), sent, number, ids)
        heapq.heappush(self._heap, entry)
        for i in ids:
            self._by_id[i] = entry

    def published_at(self, ids: list[str]) -> float | None:
        """When the first of ``ids`` still waiting was published (for the round trip), or None."""
        entry = next((self._by_id[i] for i in ids if i in self._by_id), None)
        return entry.published_mono if entry is not None else None

    def received(self, named: list[str], settled: list[str], now: float) -> None:
        """Central's receipt names ``named`` (its batch) and settles ``settled`` (stored or rejected)."""
        numbers = [self._by_id[i].number for i in named if i in self._by_id]
        if numbers:
            self._newest_receipted = max(self._newest_receipted, *numbers)
        for i in settled:
            self._by_id.pop(i, None)
        self._last_receipt = now
        self._silent_rounds = 0
        self._recent.append((now, len(settled)))
        while self._recent and self._recent[0][0] < now - RATE_WINDOW:
            self._recent.popleft()

    def expire(self, now: float) -> list[str]:
        """The ids to send again: those that waited too long — unless central is visibly still working.

        A batch is given up on when a later one was receipted (it was lost on the way), or when no receipt
        at all came for ``ack_timeout`` (central or the broker lost it). Re-sending what a slow central is
        still queueing would only slow it down further.
        """
        progressing = self._last_receipt is not None and now - self._last_receipt < self.ack_timeout
        expired: list[str] = []
        later: list[_Awaiting] = []
        while self._heap and self._heap[0].deadline <= now:
            entry = heapq.heappop(self._heap)
            live = [i for i in entry.ids if self._by_id.get(i) is entry]
            if not live:
                continue
            if progressing and entry.number > self._newest_receipted:
                entry.deadline = now + self.ack_timeout
                later.append(entry)
            else:
                expired.extend(live)
        for entry in later:
            heapq.heappush(self._heap, entry)
        if expired:
            if not progressing:
                self._silent_rounds = min(self._silent_rounds + 1, MAX_SILENT_ROUNDS)
            for i in expired:
                del self._by_id[i]
        return expired
