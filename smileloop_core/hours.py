"""Opening hours in a site's time zone: how they are written, is it open now, and when does that change.

Used by the kiosk (sleep outside hours), central (silence alerts and SLA clocks pause outside hours) and
provisioning; one parser serves the device config and the org tree alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from smileloop_core.errors import SmileloopError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)")


@dataclass(frozen=True)
class HoursConfig:
    """Opening hours in the site's time zone; a day not listed is open all day, an empty table always open."""

    timezone: str = "UTC"
    weekly: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)


class HoursError(SmileloopError, ValueError):
    """Opening hours that cannot be used; ``key`` names the entry (``timezone``, ``mon``…)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


def parse_hours(table: dict[str, Any]) -> HoursConfig:
    """``{"timezone": "Europe/Stockholm", "mon": "08:00-20:00", "sun": "closed", "sat": ["10:00-12:00", …]}``."""
    unknown = sorted(set(table) - {"timezone", *WEEKDAYS})
    if unknown:
        raise HoursError(unknown[0], f"unknown key (known: timezone, {', '.join(WEEKDAYS)})")
    tz = table.get("timezone", "UTC")
    try:
        ZoneInfo(tz)
    except Exception:
        raise HoursError("timezone", f"{tz!r} is not a known IANA time zone") from None
    weekly: dict[str, tuple[tuple[str, str], ...]] = {}
    for day in WEEKDAYS:
        spans = table.get(day)
        if spans is None:
            continue
        if not isinstance(spans, str | list):
            raise HoursError(day, f"must be a string or a list of strings, got {spans!r}")
        parsed = []
        for item in [spans] if isinstance(spans, str) else spans:
            if item == "closed":
                continue
            if not isinstance(item, str) or not _SPAN.fullmatch(item) or item[:5] >= item[6:]:
                raise HoursError(day, f"{item!r} must look like '08:00-20:00' (start before end) or 'closed'")
            parsed.append((item[:5], item[6:]))
        weekly[day] = tuple(parsed)
    return HoursConfig(timezone=tz, weekly=weekly)


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
