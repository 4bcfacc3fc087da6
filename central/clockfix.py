"""Clock repair: a device whose wall clock was wrong (no NTP yet, a dead RTC battery) still sends the
monotonic seconds of each tap and of the publish, from the same boot. Central knows when it received the
message, so it can place the tap on its own clock: ``received_at − (sent.mono − rating.mono)``.

Network and broker delay count as error, so a repair is applied only when it moves ``ts`` by more than a
threshold (2 minutes by default); the device's own ``ts`` is kept beside it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from central.ingest import IncomingRating, SentStamp

DEFAULT_THRESHOLD = timedelta(minutes=2)


def repaired_ts(rating: IncomingRating, sent: SentStamp | None, received_at: datetime) -> datetime | None:
    """Central's estimate of when the tap happened, or None when the stamps do not allow one."""
    if sent is None or sent.mono is None or sent.boot is None or rating.mono is None or rating.boot_id is None:
        return None
    if sent.boot != rating.boot_id:
        return None  # monotonic readings of different boots cannot be compared
    age = sent.mono - rating.mono
    if age < 0:
        return None  # the tap after the publish: a broken stamp, leave ts alone
    return received_at - timedelta(seconds=age)


def repair(ratings: list[IncomingRating], sent: SentStamp | None, received_at: datetime,
           threshold: timedelta = DEFAULT_THRESHOLD) -> list[IncomingRating]:
    """The ratings with ``ts`` repaired where it was off by more than ``threshold`` (``ts_device`` keeps the
    original)."""
    out: list[IncomingRating] = []
    for r in ratings:
        fixed = repaired_ts(r, sent, received_at)
        if fixed is not None and abs(fixed - r.ts) > threshold:
            out.append(replace(r, ts=fixed, ts_device=r.ts))
        else:
            out.append(r)
    return out
