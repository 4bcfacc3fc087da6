"""The screen's backlight: dimmed while the kiosk sleeps outside opening hours.

Hardware sits behind a small interface with a no-op default, so the kiosk runs on any screen and tests
drive a sysfs-shaped folder in a tmp path. On a Raspberry Pi touchscreen the folder is
``/sys/class/backlight/<name>`` (files ``brightness`` and ``max_brightness``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from kiosk_ui.errors import BacklightError
from kiosk_ui.flow import KioskFlow, Step

log = logging.getLogger(__name__)


class Backlight(Protocol):
    def set_awake(self, awake: bool) -> None: ...


class NoBacklight:
    """A screen whose brightness we do not control: the sleep screen is simply dark."""

    def set_awake(self, awake: bool) -> None:
        return None


class SysfsBacklight:
    """A Linux backlight device; ``dim`` is the share of full brightness kept while asleep."""

    def __init__(self, folder: Path, *, dim: float = 0.1) -> None:
        self.folder = Path(folder)
        if not 0 <= dim <= 1:
            raise BacklightError(f"dim must be between 0 and 1, got {dim}")
        try:
            self.max = int((self.folder / "max_brightness").read_text().strip())
        except (OSError, ValueError) as e:
            raise BacklightError(f"{self.folder} is not a backlight device (no readable max_brightness): {e}") from e
        self.dim = dim
        self._failed = False

    def set_awake(self, awake: bool) -> None:
        level = self.max if awake else round(self.max * self.dim)
        try:
            (self.folder / "brightness").write_text(f"{level}\n")
            self._failed = False
        except OSError as e:  # a backlight we cannot set must never stop the kiosk; say it once
            if not self._failed:
                log.warning("cannot set the backlight at %s: %s", self.folder, e)
            self._failed = True


def follow(flow: KioskFlow, backlight: Backlight) -> None:
    """Dim when the flow sleeps and light up when it wakes (only on a change, not every tick)."""
    state: list[bool | None] = [None]

    def on_change(_what: str) -> None:
        awake = flow.step is not Step.SLEEP
        if awake != state[0]:
            state[0] = awake
            backlight.set_awake(awake)

    flow.listeners.append(on_change)
    on_change("start")
