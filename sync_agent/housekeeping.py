"""Disk bounds for the outbox: prune delivered ratings past retention, and more while space is short.

The sync agent does this rather than the kiosk because delivery is what makes rows prunable: only
delivered (or rejected) ratings ever go. When nothing delivered is left and space is still short, the
report says so, and the agent puts it in its status for staff.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from device import DeviceStore, StorageConfig, StoreError
from smileloop_core.clock import Clock

log = logging.getLogger("smileloop.sync")

EVERY = 60.0  # seconds between retention pruning and disk checks
LOW_DISK_EVERY = 5.0  # … and while space is short, so freshly delivered rows make room soon
PRUNE_CHUNK = 1000  # delivered rows deleted per transaction while space is short


@dataclass(frozen=True)
class DiskReport:
    """One round of housekeeping: what went, the room left, and a warning while space is short."""

    pruned: int
    free_mb: float
    db_mb: float
    low: bool
    warning: str | None


class Housekeeping:
    """Runs at most every :data:`EVERY` seconds of the injected clock (:data:`LOW_DISK_EVERY` while low).

    >>> keeper = Housekeeping(store, config.storage, FakeClock())   # doctest: +SKIP
    >>> keeper.run().low                                           # doctest: +SKIP
    False
    """

    def __init__(self, store: DeviceStore, storage: StorageConfig, clock: Clock) -> None:
        self.store = store
        self.storage = storage  # replaced when a config push changes it
        self.clock = clock
        self._next = 0.0  # the first round runs at once

    def due(self) -> bool:
        """True when a round is due; the next one is then scheduled :data:`EVERY` seconds on."""
        now = self.clock.monotonic()
        if now < self._next:
            return False
        self._next = now + EVERY
        return True

    def run(self) -> DiskReport:
        """Prune, measure and report. Unsent ratings are never pruned, whatever the space left."""
        storage = self.storage
        try:
            pruned = self.store.prune(self.clock.now() - timedelta(days=storage.retention_days))
        except StoreError as e:
            log.warning("retention pruning failed: %s", e)
            pruned = 0
        space = self.store.space()
        while space.free_mb < storage.min_free_mb:
            freed = self.store.prune_oldest(PRUNE_CHUNK)
            if not freed:
                break
            pruned += freed
            space = self.store.space()
        if pruned:
            log.info("pruned %d delivered ratings", pruned)
        low = space.free_mb < storage.min_free_mb
        warning = None
        if low:
            backlog = self.store.backlog().undelivered
            warning = (f"storage low: {space.free_mb:g} MB free (minimum {storage.min_free_mb:g}); "
                       f"{backlog} unsent ratings kept, nothing delivered left to prune")
            log.error("%s", warning)
            self._next = self.clock.monotonic() + LOW_DISK_EVERY
        return DiskReport(pruned=pruned, free_mb=space.free_mb, db_mb=space.db_mb, low=low, warning=warning)
