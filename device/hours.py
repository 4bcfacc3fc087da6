"""Opening hours in a site's time zone: is it open now, and when does that change.

Used by the kiosk (sleep outside hours) and central (silence alerts and SLA clocks pause outside hours).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from device.config import HoursConfig

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _span_times(span: tuple[str, str]) -> tuple[time, time | None]:
    start = time.fromisoformat(span[0])
    end = None if span[1] == "24:00" else time.fromisoformat(span[1])  # None: until midnight
    return start, end


def is_open(hours: HoursConfig, when: datetime) -> bool:
    """True if ``when`` (aware) falls in an opening span; a day not listed is open all day."""
    local = when.astimezone(ZoneInfo(hours.timezone))
    day = WEEKDAYS[local.weekday()]
    if day not in hours.weekly:
        return True
    now = local.time().replace(tzinfo=None)
    for span in hours.weekly[day]:
        start, end = _span_times(span)
        if start <= now and (end is None or now < end):
            return True
    return False


def next_change(hours: HoursConfig, when: datetime, horizon_days: int = 8) -> datetime | None:
    """The next moment (UTC) at which open/closed flips, scanning minute boundaries of span edges; None if never."""
    tz = ZoneInfo(hours.timezone)
    state = is_open(hours, when)
    local = when.astimezone(tz)
    candidates: list[datetime] = []
    for offset in range(horizon_days + 1):
        date = (local + timedelta(days=offset)).date()
        candidates.append(datetime.combine(date, time(0, 0), tz))
        for span in hours.weekly.get(WEEKDAYS[date.weekday()], ()):
            start, end = _span_times(span)
            candidates.append(datetime.combine(date, start, tz))
            if end is not None:
                candidates.append(datetime.combine(date, end, tz))
    for edge in sorted(c for c in candidates if c > local):
        if is_open(hours, edge) != state:
            return edge.astimezone(UTC)
    return None


def open_seconds_between(hours: HoursConfig, start: datetime, end: datetime) -> float:
    """Seconds of opening time between two instants (SLA clocks that pause while closed)."""
    total = 0.0
    cursor = start
    while cursor < end:
        change = next_change(hours, cursor)
        segment_end = min(end, change) if change else end
        if is_open(hours, cursor):
            total += (segment_end - cursor).total_seconds()
        cursor = segment_end
    return total
