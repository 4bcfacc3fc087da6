"""What the fleet commands keep and read in central's store: every config push sent to a device
(``config_pushes``), and the versions already used, so the next push is one higher.

Kept apart from :class:`central.store.CentralStore` (which it is handed), since only ``smileloop fleet`` uses it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from central.store import CentralStore
from smileloop_core.clock import utc_iso


@dataclass(frozen=True)
class PushRecord:
    """One config push as sent to one device."""

    site: str
    device_id: str
    version: int
    body: dict[str, Any]
    pushed_at: str
    pushed_by: str


class PushLog:
    """``PushLog(store)``: the ``config_pushes`` table of a central store."""

    def __init__(self, store: CentralStore) -> None:
        self.db = store.db
        self.store = store

    def highest_version(self, site: str, devices: Sequence[str]) -> int:
        """The highest version pushed so far to any of ``devices`` at ``site`` (0 if none)."""
        if not devices:
            return 0
        marks = ",".join("?" * len(devices))
        value = self.db.scalar(f"SELECT max(version) AS v FROM config_pushes WHERE site = ? AND device_id IN ({marks})",
                               (site, *devices))
        return int(value or 0)

    def record(self, site: str, devices: Sequence[str], version: int, body: dict[str, Any], at: datetime,
               by: str) -> None:
        """The same push to several devices, in one transaction."""
        text = json.dumps(body, ensure_ascii=False, sort_keys=True)
        with self.store.transaction():
            self.db.executemany(
                "INSERT INTO config_pushes (site, device_id, version, body, pushed_at, pushed_by) VALUES (?,?,?,?,?,?)",
                [(site, d, version, text, utc_iso(at), by) for d in devices])

    def pushes(self, site: str | None = None, device: str | None = None, limit: int = 50) -> list[PushRecord]:
        """The latest pushes first."""
        sql, params = "SELECT * FROM config_pushes WHERE 1 = 1", list[Any]()
        if site:
            sql, params = sql + " AND site = ?", [*params, site]
        if device:
            sql, params = sql + " AND device_id = ?", [*params, device]
        rows = self.db.query(sql + " ORDER BY version DESC, site, device_id LIMIT ?", [*params, limit])
        return [PushRecord(r["site"], r["device_id"], int(r["version"]), json.loads(r["body"]), r["pushed_at"],
                     r["pushed_by"]) for r in rows]
