"""Wrong staff PINs and the lockout they earned, kept in the device store so killing the kiosk forgets neither.

One row (table ``pin_lockout``, migration ``004_pin_lockout`` of :mod:`device.store`). How long a lockout lasts
is the kiosk's rule (:mod:`kiosk_ui.staff`); this module stores it and says how much of it is left.

A lockout carries two deadlines: ``mono_until`` on the monotonic clock of the boot that set it (``CLOCK_BOOTTIME``
goes on across a process restart and does not jump with NTP), and ``until`` on the wall clock for after a reboot.
What is left is clamped to 0 … the lockout's own length: a wall clock found moved back after a reboot restarts the
lockout in full (never longer, never a permanent one, never zero by accident); only a wall clock moved forward while
the kiosk was down shortens it, as time passing would. After a reboot the lockout is re-anchored on the new boot's
monotonic clock (:meth:`PinLockout.on`), so a later NTP step cannot move it either.

Example::

    lockout = PinLockout.start(failures=5, seconds=60, clock=clock)
    save_pin_lockout(store, lockout)
    load_pin_lockout(store).left(clock)   # 60.0, in this process or the next
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from device.errors import StoreError
from smileloop_core.clock import Clock, parse_utc, utc_iso

if TYPE_CHECKING:
    from device.store import DeviceStore

PIN_LOCKOUT_TABLE = """
    CREATE TABLE pin_lockout (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        failures INTEGER NOT NULL,
        until TEXT,
        seconds REAL NOT NULL,
        boot_id TEXT,
        mono_until REAL NOT NULL
    )
"""


@dataclass(frozen=True)
class PinLockout:
    """Wrong PINs since the last right one, and the lockout in force (``seconds == 0``: none)."""

    failures: int = 0
    seconds: float = 0.0  # the length of the current lockout: the most it can ever have left
    until: datetime | None = None  # wall time it ends
    boot_id: str | None = None  # the boot whose monotonic clock ``mono_until`` is read on
    mono_until: float = 0.0

    @classmethod
    def start(cls, *, failures: int, seconds: float, clock: Clock) -> PinLockout:
        """``failures`` wrong PINs so far and a lockout of ``seconds`` from now (0: no lockout)."""
        if seconds <= 0:
            return cls(failures=failures)
        return cls(failures=failures, seconds=float(seconds), until=clock.now() + timedelta(seconds=seconds),
                   boot_id=clock.boot_id(), mono_until=clock.monotonic() + seconds)

    def left(self, clock: Clock) -> float:
        """Seconds until the next try, between 0 and :attr:`seconds`: by the monotonic clock on the boot that set
        the lockout, by the wall clock after a reboot."""
        if self.seconds <= 0:
            return 0.0
        if self.boot_id == clock.boot_id():
            left = self.mono_until - clock.monotonic()
        elif self.until is not None:
            left = (self.until - clock.now()).total_seconds()
        else:
            left = self.seconds
        return min(max(left, 0.0), self.seconds)

    def on(self, clock: Clock) -> PinLockout:
        """The same lockout with what is left of it anchored on this boot's clocks (itself if already there)."""
        if self.seconds <= 0 or self.boot_id == clock.boot_id():
            return self
        left = self.left(clock)
        return PinLockout(failures=self.failures, seconds=self.seconds, until=clock.now() + timedelta(seconds=left),
                          boot_id=clock.boot_id(), mono_until=clock.monotonic() + left)


def load_pin_lockout(store: DeviceStore) -> PinLockout:
    """The stored lockout, or a clean one if there is none; a broken store raises :class:`StoreError`."""
    with store._read("could not read the PIN lockout") as c:
        row = c.execute("SELECT failures, seconds, until, boot_id, mono_until FROM pin_lockout WHERE id = 1").fetchone()
    if row is None:
        return PinLockout()
    failures, seconds, until, boot_id, mono_until = row
    try:
        when = parse_utc(until) if until else None
    except ValueError as e:
        raise StoreError(f"the PIN lockout in {store.path} has a bad time {until!r}") from e
    return PinLockout(failures=int(failures), seconds=float(seconds), until=when, boot_id=boot_id,
                      mono_until=float(mono_until))


def save_pin_lockout(store: DeviceStore, lockout: PinLockout) -> None:
    """Replace the stored lockout (durably: ``synchronous=FULL``, as a tap is)."""
    with store._write("could not save the PIN lockout") as c:
        c.execute("INSERT OR REPLACE INTO pin_lockout (id, failures, seconds, until, boot_id, mono_until) "
                  "VALUES (1, ?, ?, ?, ?, ?)",
                  (lockout.failures, lockout.seconds, utc_iso(lockout.until) if lockout.until else None,
                   lockout.boot_id, lockout.mono_until))
