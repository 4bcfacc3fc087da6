"""What the kiosk looks after between visitors: a changed config, free disk, the outcomes banner, a broken store.

None of it is the visitor's business, and each changes for its own reasons; the flow asks these at the times
:class:`Every` says, on its injected clock, and only ever between visitors (or while out of order).
"""

from __future__ import annotations

import logging
from pathlib import Path

from device import ConfigError, DeviceConfig, DeviceStore, Recorder, StoreError, central_overlay_path, load_config
from kiosk_ui.i18n import SOURCE_LANGUAGE
from kiosk_ui.status import disk_free_mb
from smileloop_core.clock import Clock

log = logging.getLogger(__name__)

# Below this the next write will fail anyway: say so before a visitor is thanked for nothing.
MIN_FREE_MB = 1.0


class Every:
    """A repeating timer on an injected clock: :meth:`due` is true once per ``period``.

    >>> clock = FakeClock(); timer = Every(clock, 5.0)
    >>> timer.due(), timer.due()
    (True, False)
    """

    def __init__(self, clock: Clock, period: float, *, first: float = 0.0) -> None:
        self.clock = clock
        self.period = period
        self._next = clock.monotonic() + first

    def due(self) -> bool:
        """True when the period has passed; the next one is then a full period away."""
        now = self.clock.monotonic()
        if now < self._next:
            return False
        self._next = now + self.period
        return True

    def restart(self) -> None:
        """Count a full period from now (after a failure, before trying again)."""
        self._next = self.clock.monotonic() + self.period


class ConfigWatch:
    """Notices a changed staff file or central overlay by (mtime, size), so a config is parsed only on change."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stamp = self._stat()

    def reload(self, current: DeviceConfig) -> DeviceConfig | None:
        """The new config if either file changed and it validates; None otherwise (a bad one is logged)."""
        stamp = self._stat()
        if stamp is None or stamp == self._stamp or self.path is None:
            return None
        self._stamp = stamp
        try:
            return load_config(self.path)
        except ConfigError as e:
            log.error("new config refused, keeping version %s: %s", current.version, e)
            return None

    def _stat(self) -> tuple[int, ...] | None:
        if self.path is None:
            return None
        stamp: list[int] = []
        for path in (Path(self.path), central_overlay_path(self.path)):
            try:
                st = path.stat()
            except FileNotFoundError:
                stamp += [0, -1]  # no overlay (yet) is a state too: its removal is a change
                continue
            except OSError:
                return None
            stamp += [st.st_mtime_ns, st.st_size]
        return tuple(stamp)


def warn_config(config: DeviceConfig, max_chips: int) -> None:
    """Log what a config asks that the screen will not show (more reason chips than fit)."""
    for key in ("reasons_negative", "reasons_positive"):
        reasons = getattr(config.survey, key)
        if len(reasons) > max_chips:
            log.warning("survey.%s has %d reasons; the kiosk shows the first %d: %s", key, len(reasons),
                        max_chips, ", ".join(reasons[:max_chips]))


def disk_short(config: DeviceConfig) -> StoreError | None:
    """A fault to show when the store's disk is too full to record a tap, else None."""
    free = disk_free_mb(config.storage.path)
    if free < MIN_FREE_MB:
        return StoreError(f"only {free:.1f} MB free for {config.storage.path}")
    return None


def reopen(config: DeviceConfig, clock: Clock) -> Recorder:
    """Out of order: open the store afresh and check it whole; raises :class:`StoreError` while it is not usable."""
    if disk_free_mb(config.storage.path) < MIN_FREE_MB:
        raise StoreError(f"still no space for {config.storage.path}")
    store = DeviceStore(config.storage.path, clock=clock)
    check = store.integrity_check()
    if check != "ok":
        store.close()
        raise StoreError(f"integrity check of {config.storage.path}: {check}")
    return Recorder(store, config, clock=clock)


class Outcomes:
    """The "you said, we did" items central sent, read from the store, one shown at a time."""

    def __init__(self) -> None:
        self.items: list[dict[str, object]] = []
        self.index = 0

    def refresh(self, store: DeviceStore | None) -> bool:
        """Re-read the items; True when they changed (the banner starts again from the first)."""
        if store is None:
            return False
        try:
            items = store.outcomes()
        except StoreError as e:
            log.warning("cannot read outcomes: %s", e)
            return False
        if items == self.items:
            return False
        self.items, self.index = items, 0
        return True

    def rotate(self) -> bool:
        """Show the next item; True when there was another to show."""
        if len(self.items) < 2:
            return False
        self.index = (self.index + 1) % len(self.items)
        return True

    def text(self, lang: str) -> str | None:
        """The item shown now in ``lang`` (else English, else any language it has)."""
        if not self.items:
            return None
        text = self.items[self.index % len(self.items)].get("text")
        if isinstance(text, str):
            return text
        if isinstance(text, dict) and text:
            return str(text.get(lang) or text.get(SOURCE_LANGUAGE) or next(iter(text.values())))
        return None
