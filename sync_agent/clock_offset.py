"""The device's wall-clock offset from central, measured from receipts (NTP's idea, on our own messages).

Each receipt carries central's wall clock ``ts`` at storing. The device knows when it published the
message (monotonic) and when the receipt came back, so the offset is ``central_ts − local wall at the
midpoint`` with an error of at most half the round trip. The sample with the shortest round trip among
the recent ones is the best estimate; a slow broker only widens the error bar.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from smileloop_core.clock import parse_utc

log = logging.getLogger("smileloop.sync")

CLOCK_STEP = 2.0  # seconds of wall-vs-monotonic disagreement that count as the wall clock being stepped


@dataclass(frozen=True)
class OffsetSample:
    offset: float  # seconds to add to the device's wall clock to get central's
    error: float  # ± seconds (half the round trip)
    at_mono: float


class ClockOffset:
    """Keeps the last ``window`` samples; ``best`` is the one with the smallest error."""

    def __init__(self, window: int = 32) -> None:
        self._samples: deque[OffsetSample] = deque(maxlen=window)
        self._wall_mark: tuple[datetime, float] | None = None  # (wall, monotonic) at the last receipt

    def measure(self, central_ts: object, local_now: datetime, sent_mono: float, mono: float) -> OffsetSample | None:
        """A receipt stamped ``central_ts`` arrived at ``local_now`` / ``mono`` for a batch sent at ``sent_mono``.

        A stamp that is missing or unreadable adds nothing. A wall clock stepped since the last receipt (NTP,
        a staff fix) first voids the older samples, which describe the clock as it was.
        """
        if not isinstance(central_ts, str):
            return None
        try:
            central = parse_utc(central_ts)
        except ValueError:
            return None
        self._check_step(local_now, mono)
        return self.add(central, local_now, mono - sent_mono, mono)

    def _check_step(self, now: datetime, mono: float) -> None:
        if self._wall_mark is not None:
            wall0, mono0 = self._wall_mark
            if abs((now - wall0).total_seconds() - (mono - mono0)) > CLOCK_STEP:
                log.info("the device's wall clock was stepped; measuring its offset afresh")
                self.reset()
        self._wall_mark = (now, mono)

    def add(self, central_ts: datetime, local_now: datetime, rtt: float, at_mono: float) -> OffsetSample:
        """``local_now`` is the device wall clock when the receipt arrived; ``rtt`` is publish → receipt."""
        rtt = max(0.0, rtt)
        offset = (central_ts - local_now).total_seconds() + rtt / 2
        sample = OffsetSample(offset=offset, error=rtt / 2, at_mono=at_mono)
        self._samples.append(sample)
        return sample

    def reset(self) -> None:
        """The wall clock was stepped (a jump seen locally): old samples no longer describe it."""
        self._samples.clear()

    @property
    def best(self) -> OffsetSample | None:
        return min(self._samples, key=lambda s: s.error, default=None)
