"""The way into staff mode: a hidden corner gesture, then a PIN pad that locks after repeated wrong PINs.

Kept apart from the visitor's steps because it changes for other reasons (security, not the survey), and
so its timing rules — taps within a window, a lockout — are tested on an injected clock alone.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from kiosk_ui.errors import PinError
from kiosk_ui.pin import MAX_DIGITS, verify_pin
from kiosk_ui.steps import Timings
from smileloop_core.clock import Clock

log = logging.getLogger(__name__)


class PinResult(StrEnum):
    OPEN = "open"
    WRONG = "wrong"
    LOCKED = "locked"  # too many wrong PINs in a row: the pad refuses even the right one for a while


class StaffGate:
    """Corner taps and PIN entry for one kiosk.

    >>> gate = StaffGate(FakeClock(), Timings(staff_taps=5, staff_window=3.0))
    >>> [gate.corner_tap() for _ in range(5)][-1]
    True
    """

    def __init__(self, clock: Clock, timings: Timings) -> None:
        self.clock = clock
        self.taps, self.window = timings.staff_taps, timings.staff_window
        self.attempts, self.lockout = timings.pin_attempts, timings.pin_lockout
        self.entry = ""  # the digits typed so far
        self._corner: list[float] = []
        self._failures = 0
        self._locked_until = 0.0

    def corner_tap(self) -> bool:
        """One tap in the corner; True when it completes the gesture (``taps`` within ``window`` seconds)."""
        now = self.clock.monotonic()
        self._corner = [t for t in self._corner if now - t <= self.window] + [now]
        if len(self._corner) < self.taps:
            return False
        self._corner.clear()
        return True

    def key(self, digit: str) -> bool:
        """Type one digit; False when it is not a digit or the PIN is already as long as a PIN can be."""
        if not digit.isdigit() or len(self.entry) >= MAX_DIGITS:
            return False
        self.entry += digit
        return True

    def backspace(self) -> None:
        self.entry = self.entry[:-1]

    def clear(self) -> None:
        self.entry = ""

    def submit(self, pin_hash: str | None) -> PinResult:
        """Check the typed PIN against ``pin_hash`` (cleared either way); no hash means staff mode is off."""
        entry, self.entry = self.entry, ""
        now = self.clock.monotonic()
        if now < self._locked_until:
            return PinResult.LOCKED
        try:
            ok = bool(pin_hash) and verify_pin(entry, pin_hash or "")
        except PinError as e:
            log.error("staff mode refused: %s", e)
            ok = False
        if ok:
            self._failures = 0
            return PinResult.OPEN
        self._failures += 1
        log.warning("wrong staff PIN (%d in a row)", self._failures)
        if self._failures >= self.attempts:
            self._failures = 0
            self._locked_until = now + self.lockout
            return PinResult.LOCKED
        return PinResult.WRONG
