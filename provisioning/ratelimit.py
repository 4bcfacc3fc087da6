"""A sliding-window rate limit kept in memory, on an injectable clock (tests advance a ``FakeClock``)."""

from __future__ import annotations

from collections import deque

from smileloop_core.clock import Clock

MAX_KEYS = 10_000  # a flood of fresh keys cannot grow memory without bound: the oldest windows are dropped


class RateLimiter:
    """At most ``limit`` hits per ``window`` seconds for each key.

    >>> from smileloop_core.clock import FakeClock
    >>> limits = RateLimiter(2, 60.0, FakeClock())
    >>> [limits.hit("kiosk"), limits.hit("kiosk"), limits.hit("kiosk") > 0]
    [0.0, 0.0, True]
    """

    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window > 0")
        self.limit, self.window, self.clock = limit, window, clock
        self._hits: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self.clock.monotonic()
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= MAX_KEYS:
                self._hits.pop(next(iter(self._hits)))
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        return hits

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may try again (0.0: now), without counting a hit."""
        hits = self._recent(key)
        if len(hits) < self.limit:
            return 0.0
        return max(0.001, hits[0] + self.window - self.clock.monotonic())

    def hit(self, key: str) -> float:
        """Count one hit if allowed and return 0.0; else the seconds to wait (nothing is counted)."""
        wait = self.wait(key)
        if wait == 0.0:
            self._hits[key].append(self.clock.monotonic())
        return wait
