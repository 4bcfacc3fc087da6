"""Time as a parameter: wall time, monotonic time and the boot id, injectable for tests.

Ratings carry the boot id and a monotonic reading beside the wall time, so central can repair a
rating taken while the wall clock was wrong (before NTP, after a dead RTC battery).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds since an arbitrary point that never jumps (since boot on Linux)."""
        ...

    def boot_id(self) -> str:
        """Identifies the current boot, so monotonic readings are comparable within it."""
        ...


def _read_boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return f"proc-{uuid.uuid4()}"


class SystemClock:
    """The real clocks. ``CLOCK_BOOTTIME`` counts suspended time too, so it tracks wall time across sleep."""

    _boot_id: str | None = None

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        clock = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)
        return time.clock_gettime(clock)

    def boot_id(self) -> str:
        if SystemClock._boot_id is None:
            SystemClock._boot_id = _read_boot_id()
        return SystemClock._boot_id


class FakeClock:
    """A clock tests move by hand; wall time can jump (backwards too) independently of monotonic time."""

    def __init__(self, start: datetime | None = None, boot: str = "fake-boot") -> None:
        self._now = start or datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
        self._mono = 1000.0
        self._boot = boot

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def boot_id(self) -> str:
        return self._boot

    def advance(self, seconds: float) -> None:
        """Let time pass: wall and monotonic move together."""
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    def set_wall(self, when: datetime) -> None:
        """Jump the wall clock only, as NTP or a bad RTC would."""
        self._now = when

    def reboot(self, boot: str) -> None:
        self._boot = boot
        self._mono = 5.0


def utc_iso(when: datetime) -> str:
    """RFC 3339 UTC with milliseconds and a ``Z``, the one timestamp format on the wire."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """Parse an RFC 3339 timestamp; naive ones are refused because their zone is unknown."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return parsed.astimezone(UTC)
