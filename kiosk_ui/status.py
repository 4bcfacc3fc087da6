"""What staff mode shows: read from the device store and the sync agent's last saved status.

The kiosk never talks to the network; the broker state here is what the sync agent last wrote.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from device import DeviceConfig, DeviceStore, StoreError
from kiosk_ui.i18n import N_
from smileloop_core.clock import parse_utc


@dataclass(frozen=True)
class StatusLine:
    label: str  # msgid, translated when shown
    value: str
    warn: bool = False


def disk_free_mb(path: Path) -> float:
    """Free space where the store lives (its folder, as the file may not exist yet)."""
    folder = path if path.is_dir() else path.parent
    try:
        return shutil.disk_usage(folder).free / 1e6
    except OSError:
        return 0.0


def _age(ts: str | None, now: datetime) -> str:
    if not ts:
        return "never"
    seconds = max(0.0, (now - parse_utc(ts)).total_seconds())
    if seconds < 120:
        return f"{ts} ({seconds:.0f} s ago)"
    if seconds < 7200:
        return f"{ts} ({seconds / 60:.0f} min ago)"
    return f"{ts} ({seconds / 3600:.1f} h ago)"


def staff_status(config: DeviceConfig, store: DeviceStore | None, now: datetime,
                 fault: str | None = None) -> list[StatusLine]:
    """Status lines for staff mode: backlog, broker connection, last sync, disk, faults."""
    lines = [StatusLine(N_("Device"), f"{config.device_id} @ {config.site} / {config.location}"),
             StatusLine(N_("Config version"), str(config.version))]
    if fault:
        lines.append(StatusLine(N_("Fault"), fault, warn=True))
    agent: dict[str, object] | None = None
    if store is not None:
        try:
            backlog = store.backlog()
            agent = store.agent_status()
            lines.append(StatusLine(
                N_("Backlog"), f"{backlog.queued} queued, {backlog.sent} sent awaiting receipt"
                + (f", oldest {backlog.oldest_unsent_ts}" if backlog.oldest_unsent_ts else ""),
                warn=backlog.undelivered > 0 and backlog.oldest_unsent_ts is not None
                and (now - parse_utc(backlog.oldest_unsent_ts)).total_seconds() > 300))
        except StoreError as e:
            lines.append(StatusLine(N_("Backlog"), f"cannot read the store: {e}", warn=True))
    if agent is None:
        lines.append(StatusLine(N_("Broker"), "sync agent has not reported yet", warn=True))
    else:
        connected = bool(agent.get("connected"))
        error = agent.get("last_error")
        lines.append(StatusLine(N_("Broker"), ("connected" if connected else "disconnected")
                                + (f" (last error: {error})" if error else ""), warn=not connected))
        lines.append(StatusLine(N_("Last sync"), _age(str(agent["last_delivery"]) if agent.get("last_delivery")
                                                      else None, now)))
        updated = str(agent.get("updated_at") or "")
        stale = not updated or (now - parse_utc(updated)).total_seconds() > 3 * config.sync.heartbeat
        lines.append(StatusLine(N_("Agent report"), _age(updated or None, now), warn=stale))
    try:
        space = store.space() if store is not None else None
    except StoreError:
        space = None
    if space is not None:  # the store's own view: the tighter of the disk and its size cap
        lines.append(StatusLine(N_("Disk free"), f"{space.free_mb:,.0f} MB" + (" (store cap)" if space.capped else "")
                                + f", store {space.db_mb:,.1f} MB", warn=space.free_mb < config.storage.min_free_mb))
    else:
        free = disk_free_mb(config.storage.path)
        lines.append(StatusLine(N_("Disk free"), f"{free:,.0f} MB", warn=free < config.storage.min_free_mb))
    return lines
