"""What the agent says about itself: the status record, and the retained heartbeat built from it.

The heartbeat goes out every ``sync.heartbeat`` seconds and at once when something staff should see
changes (connected, config applied, disk low). The same record is left in the device store for staff
mode and ``smileloop sync --status``, since the kiosk never talks to the broker itself.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

from device import DeviceConfig, DeviceStore, StoreError
from smileloop_core import __version__
from smileloop_core.clock import Clock, parse_utc, utc_iso

log = logging.getLogger("smileloop.sync")


@dataclass
class SyncStatus:
    """What staff mode and the status heartbeat show about delivery."""

    connected: bool = False
    backlog: int = 0
    oldest_unsent: str | None = None
    last_connect: str | None = None
    last_delivery: str | None = None
    last_error: str | None = None
    delivered: int = 0
    rejected: int = 0
    refused_publishes: int = 0
    reconnects: int = 0
    config_version: int = 0
    config: dict[str, Any] | None = None  # the last push: version, applied/unchanged/rejected, reason
    erase: dict[str, Any] | None = None  # the last erase message: request ids done, rows erased, error
    clock_offset: float | None = None  # seconds to add to this device's wall clock to get central's
    clock_offset_error: float | None = None
    disk_free_mb: float | None = None
    db_mb: float | None = None
    disk_low: bool = False
    storage_warning: str | None = None  # set while space is short; outlives a reconnect, unlike last_error
    pruned: int = 0
    batch_size: int = 0
    max_packet: int | None = None
    receive_max: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Heartbeat:
    """When the next status message is due, and what it says; time comes from the injected clock.

    >>> beat = Heartbeat(SyncStatus(), store, FakeClock())   # doctest: +SKIP
    >>> beat.due(clock.monotonic())                          # doctest: +SKIP
    True
    """

    def __init__(self, status: SyncStatus, store: DeviceStore, clock: Clock) -> None:
        self.status = status
        self.store = store
        self.clock = clock
        self.started = clock.monotonic()
        self._next = 0.0  # the first one goes out at once

    def soon(self) -> None:
        """Something staff should see changed: announce it at the next step instead of waiting."""
        self._next = 0.0

    def due(self, now: float) -> bool:
        return now >= self._next

    def sent(self, now: float, every: float) -> None:
        """A heartbeat went out at ``now``; the next is due ``every`` seconds later."""
        self._next = now + every

    def refresh(self) -> None:
        """Read the backlog into the status (O(backlog): at heartbeats and at the end of a drain only)."""
        backlog = self.store.backlog()
        self.status.backlog = backlog.undelivered
        self.status.oldest_unsent = backlog.oldest_unsent_ts

    def save(self) -> None:
        """Leave the status in the device store too, for staff mode and ``smileloop sync --status``."""
        try:
            self.store.save_agent_status(self.status.as_dict(), self.clock.now())
        except StoreError as e:  # a full disk must not stop delivery, which is what frees it
            log.warning("could not save the agent status: %s", e)

    def payload(self, state: str, config: DeviceConfig) -> bytes:
        """The retained status message: ``online`` at each heartbeat, ``offline`` as the goodbye."""
        self.refresh()
        now = self.clock.now()
        mono = self.clock.monotonic()
        space = self.store.space()
        s = self.status
        s.disk_free_mb, s.db_mb = space.free_mb, space.db_mb
        oldest_age = (now - parse_utc(s.oldest_unsent)).total_seconds() if s.oldest_unsent else None
        return json.dumps({
            "v": 1, "state": state, "device": config.device_id, "site": config.site,
            "location": config.location, "ts": utc_iso(now),
            "backlog": s.backlog, "oldest_unsent": s.oldest_unsent,
            "oldest_unsent_age": round(oldest_age, 1) if oldest_age is not None else None,
            "disk_free_mb": round(space.free_mb, 1), "db_mb": round(space.db_mb, 1), "disk_low": s.disk_low,
            "version": __version__, "uptime": round(mono - self.started, 1),
            "boot": self.clock.boot_id(), "boot_uptime": round(mono, 1),
            "clock_offset": s.clock_offset, "clock_offset_error": s.clock_offset_error,
            "config_version": s.config_version, "config": s.config, "erase": s.erase,
            "delivered": s.delivered, "refused_publishes": s.refused_publishes, "reconnects": s.reconnects,
            "batch_size": s.batch_size, "storage_warning": s.storage_warning,
            "last_error": s.last_error or s.storage_warning,
        }).encode()
