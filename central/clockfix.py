"""Clock repair: a device whose wall clock was wrong (no NTP yet, a dead RTC battery) still sends the
monotonic seconds of each tap and of the publish, from the same boot. Central places the tap on its own clock:
``anchor − (sent.mono − rating.mono)``, where the anchor is central's time at the publish.

The anchor is ``sent.ts`` corrected by the offset the device measured from receipts (its status carries
``clock_offset`` for its ``boot``) when there is one — so a message that waited in the broker's queue keeps its
time — and otherwise the moment central received the message (network delay is small). A repair is applied only
when it moves ``ts`` by more than a threshold (2 minutes by default); the device's own ``ts`` is kept beside it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from central.ingest import IncomingRating, SentStamp

DEFAULT_THRESHOLD = timedelta(minutes=2)


def publish_time(sent: SentStamp, received_at: datetime, offset: float | None,
                 slack: timedelta = DEFAULT_THRESHOLD) -> datetime:
    """Central's time when the device published: its own clock plus its measured offset if that is plausible
    (not after the receipt), else the receipt time."""
    if offset is not None and sent.ts is not None:
        anchor = sent.ts + timedelta(seconds=offset)
        if anchor <= received_at + slack:
            return anchor
    return received_at


def repaired_ts(rating: IncomingRating, sent: SentStamp | None, received_at: datetime,
                offset: float | None = None) -> datetime | None:
    """Central's estimate of when the tap happened, or None when the stamps do not allow one."""
    if sent is None or sent.mono is None or sent.boot is None or rating.mono is None or rating.boot_id is None:
        return None
    if sent.boot != rating.boot_id:
        return None  # monotonic readings of different boots cannot be compared
    age = sent.mono - rating.mono
    if age < 0:
        return None  # the tap after the publish: a broken stamp, leave ts alone
    return publish_time(sent, received_at, offset) - timedelta(seconds=age)


def repair(ratings: list[IncomingRating], sent: SentStamp | None, received_at: datetime,
           threshold: timedelta = DEFAULT_THRESHOLD, offset: float | None = None) -> list[IncomingRating]:
    """The ratings with ``ts`` repaired where it was off by more than ``threshold`` (``ts_device`` keeps the
    original). ``offset``: seconds to add to the device's clock to get central's, measured in the same boot."""
    out: list[IncomingRating] = []
    for r in ratings:
        fixed = repaired_ts(r, sent, received_at, offset)
        if fixed is not None and abs(fixed - r.ts) > threshold:
            out.append(replace(r, ts=fixed, ts_device=r.ts))
        else:
            out.append(r)
    return out
