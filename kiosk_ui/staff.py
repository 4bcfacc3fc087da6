"""The way into staff mode: a hidden corner gesture, then a PIN pad that locks for longer after each wrong PIN.

Kept apart from the visitor's steps because it changes for other reasons (security, not the survey), and
so its timing rules — taps within a window, a lockout — are tested on an injected clock alone.

The lockout is kept in the device store (:mod:`device.lockout`), so killing or rebooting the kiosk does not reset
it: the first ``pin_attempts - 1`` wrong PINs are free, then each wrong PIN locks the pad for ``pin_lockout``
seconds, doubled for every further one, at most ``pin_lockout_max``. A right PIN clears the count. While the pad is
locked nothing is checked (nor counted). If the store cannot be written, the lockout still holds in memory.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from enum import StrEnum

from device import DeviceStore, PinLockout, StoreError, load_pin_lockout, save_pin_lockout
from kiosk_ui.errors import PinError
from kiosk_ui.i18n import N_
from kiosk_ui.pin import MAX_DIGITS, MIN_DIGITS, verify_pin
from kiosk_ui.steps import Timings
from smileloop_core.clock import Clock

log = logging.getLogger(__name__)

WAIT_SECONDS = N_("Too many wrong PINs. Try again in {seconds} s.")
WAIT_MINUTES = N_("Too many wrong PINs. Try again in {minutes} min.")


class PinResult(StrEnum):
    OPEN = "open"
    WRONG = "wrong"
    LOCKED = "locked"  # too many wrong PINs: the pad refuses even the right one for a while


def lockout_seconds(failures: int, timings: Timings) -> float:
    """How long ``failures`` wrong PINs in a row lock the pad: 0 before ``pin_attempts``, then doubling, capped.

    >>> [lockout_seconds(n, Timings()) for n in (4, 5, 6, 7, 12)]
    [0.0, 60.0, 120.0, 240.0, 3600.0]
    """
    if failures < timings.pin_attempts:
        return 0.0
    doublings = min(failures - timings.pin_attempts, 32)  # the cap is reached long before; no huge powers
    return float(min(timings.pin_lockout * 2 ** doublings, timings.pin_lockout_max))


def wait_text(seconds: float, gettext: Callable[[str], str]) -> str:
    """"Try again in …" for a locked pad, rounded up (never "0 s" while it is still locked)."""
    if seconds < 60:
        return gettext(WAIT_SECONDS).format(seconds=max(1, math.ceil(seconds)))
    return gettext(WAIT_MINUTES).format(minutes=math.ceil(seconds / 60))


class StaffGate:
    """Corner taps and PIN entry for one kiosk; ``store`` gives the device store in use now (or None).

    >>> gate = StaffGate(FakeClock(), Timings(staff_taps=5, staff_window=3.0))
    >>> [gate.corner_tap() for _ in range(5)][-1]
    True
    """

    def __init__(self, clock: Clock, timings: Timings,
                 store: Callable[[], DeviceStore | None] = lambda: None) -> None:
        self.clock = clock
        self.timings = timings
        self.taps, self.window = timings.staff_taps, timings.staff_window
        self.entry = ""  # the digits typed so far
        self._corner: list[float] = []
        self._store = store
        self._lockout = PinLockout()  # what is in force; the store's copy is read once per store, then written
        self._read_from: DeviceStore | None = None

    def corner_tap(self) -> bool:
        """One tap in the corner; True when it completes the gesture (``taps`` within ``window`` seconds)."""
        now = self.clock.monotonic()
        self._corner = [t for t in self._corner if now - t <= self.window] + [now]
        if len(self._corner) < self.taps:
            return False
        self._corner.clear()
        return True

    def locked_for(self) -> float:
        """Seconds until the pad takes a PIN again (0: it does now)."""
        return self._current().left(self.clock)

    def key(self, digit: str) -> bool:
        """Type one digit; False when it is not a digit, the PIN is as long as a PIN can be, or the pad is locked."""
        if not digit.isdigit() or len(self.entry) >= MAX_DIGITS or self.locked_for() > 0:
            return False
        self.entry += digit
        return True

    def backspace(self) -> None:
        self.entry = self.entry[:-1]

    def clear(self) -> None:
        self.entry = ""

    def submit(self, pin_hash: str | None) -> PinResult:
        """Check the typed PIN against ``pin_hash`` (cleared either way); no hash means staff mode is off.

        Fewer than :data:`MIN_DIGITS` digits cannot be a PIN: refused without counting (a stray OK)."""
        entry, self.entry = self.entry, ""
        lockout = self._current()
        if lockout.left(self.clock) > 0:
            return PinResult.LOCKED
        if len(entry) < MIN_DIGITS:
            return PinResult.WRONG
        try:
            ok = bool(pin_hash) and verify_pin(entry, pin_hash or "")
        except PinError as e:
            log.error("staff mode refused: %s", e)
            ok = False
        if ok:
            if lockout.failures:
                self._keep(PinLockout())
            return PinResult.OPEN
        failures = lockout.failures + 1
        seconds = lockout_seconds(failures, self.timings)
        self._keep(PinLockout.start(failures=failures, seconds=seconds, clock=self.clock))
        if seconds:
            log.warning("wrong staff PIN (%d in a row): the pad is locked for %.0f s", failures, seconds)
            return PinResult.LOCKED
        log.warning("wrong staff PIN (%d in a row)", failures)
        return PinResult.WRONG

    # --- the lockout, kept in the store ------------------------------------------------------------
    def _current(self) -> PinLockout:
        """The lockout in force, read from the store the first time this store is seen (after a restart, or a
        store reopened elsewhere: the stricter of the two wins) and anchored on this boot's clocks."""
        store = self._store()
        if store is not None and store is not self._read_from:
            self._read_from = store
            try:
                stored = load_pin_lockout(store)
            except StoreError as e:
                log.error("PIN lockout kept in memory only: %s", e)
            else:
                if stored.failures >= self._lockout.failures:
                    self._lockout = stored
                else:
                    self._keep(self._lockout)
        anchored = self._lockout.on(self.clock)
        if anchored is not self._lockout:
            if anchored.left(self.clock) >= anchored.seconds > 0:
                log.warning("PIN lockout restarted in full: the wall clock is behind its start (moved back?)")
            self._keep(anchored)
        return self._lockout

    def _keep(self, lockout: PinLockout) -> None:
        self._lockout = lockout
        store = self._store()
        if store is None:
            return
        try:
            save_pin_lockout(store, lockout)
        except StoreError as e:
            log.error("PIN lockout kept in memory only: %s", e)
