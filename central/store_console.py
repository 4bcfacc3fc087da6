"""What the console reads and writes about alerts beyond the lifecycle: filtered pages of alerts limited to a
user's sites, the changes since a cursor for the live stream, assignment, and the people and rules it lists.

Handed a :class:`central.store.CentralStore` (like :class:`central.store_fleet.PushLog`); all its SQL is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from central.records import Alert
from central.store import CentralStore
from central.store_alerts import alert_row
from smileloop_core.clock import utc_iso

# Audit ids a live stream looks back over on every poll: on PostgreSQL a lower id can commit after a higher one.
LOOKBACK = 500


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts a list shows. ``sites`` None: every site (an admin); otherwise only those."""

    sites: tuple[str, ...] | None = None
    site: str | None = None
    location: str | None = None
    kind: str | None = None
    state: str | None = None  # open | acknowledged | resolved | live
    since: datetime | None = None  # opened at or after
    until: datetime | None = None  # opened before
    assignee: str | None = None


class ConsoleReads:
    """``ConsoleReads(store)``: alert pages and changes for the console and its API."""

    def __init__(self, store: CentralStore) -> None:
        self.store = store
        self.db = store.db

    def alerts(self, f: AlertFilter, *, limit: int = 50, offset: int = 0) -> tuple[list[Alert], int]:
        """A page of alerts, newest first, and how many match in all."""
        where, params = _where(f)
        total = int(self.db.scalar(f"SELECT count(*) AS n FROM alerts WHERE {where}", params) or 0)
        rows = self.db.query(f"SELECT * FROM alerts WHERE {where} ORDER BY opened_at DESC, id LIMIT ? OFFSET ?",
                             [*params, limit, offset])
        return [alert_row(r) for r in rows], total

    def cursor(self) -> int:
        """Where a live stream starts: the newest audit entry now."""
        return int(self.db.scalar("SELECT max(id) AS n FROM alert_audit") or 0)

    def changed_since(self, cursor: int, sites: tuple[str, ...] | None) -> tuple[list[tuple[Alert, int]], int]:
        """Alerts with an audit entry after ``cursor - LOOKBACK`` (opened, acknowledged, assigned, resolved…),
        within ``sites``, each with its newest audit id; and the new cursor. The caller drops what it has sent."""
        rows = self.db.query("SELECT alert_id, id FROM alert_audit WHERE id > ? ORDER BY id",
                             (max(0, cursor - LOOKBACK),))
        if not rows:
            return [], cursor
        newest: dict[str, int] = {}
        for r in rows:
            newest[str(r["alert_id"])] = int(r["id"])
        ids = list(newest)
        found: list[tuple[Alert, int]] = []
        for start in range(0, len(ids), 200):
            chunk = ids[start:start + 200]
            marks = ",".join("?" * len(chunk))
            sql, params = f"SELECT * FROM alerts WHERE id IN ({marks})", list[Any](chunk)
            if sites is not None:
                sql += f" AND site IN ({','.join('?' * len(sites))})" if sites else " AND 1 = 0"
                params += list(sites)
            found += [(alert_row(r), newest[r["id"]]) for r in self.db.query(sql, params)]
        found.sort(key=lambda pair: pair[1])
        return found, max(cursor, *newest.values())

    def kinds_and_locations(self, sites: tuple[str, ...] | None) -> tuple[list[str], list[tuple[str, str]]]:
        """The alert kinds seen and the (site, location) pairs with alerts: the choices of the filter form."""
        where, params = _where(AlertFilter(sites=sites))
        kinds = [r["kind"] for r in self.db.query(f"SELECT DISTINCT kind FROM alerts WHERE {where} ORDER BY kind",
                                                  params)]
        places = [(r["site"], r["location"]) for r in self.db.query(
            f"SELECT DISTINCT site, location FROM alerts WHERE {where} AND location IS NOT NULL "
            "ORDER BY site, location", params)]
        return kinds, places

    def sla_counts(self, sites: tuple[str, ...] | None) -> dict[str, int]:
        """Live alerts by state, for the header."""
        where, params = _where(AlertFilter(sites=sites, state="live"))
        rows = self.db.query(f"SELECT state, count(*) AS n FROM alerts WHERE {where} AND parent_id IS NULL "
                             "GROUP BY state", params)
        return {str(r["state"]): int(r["n"]) for r in rows}


def _where(f: AlertFilter) -> tuple[str, list[Any]]:
    where, params = ["1 = 1"], list[Any]()
    if f.sites is not None:
        if not f.sites:
            return "1 = 0", []
        where.append(f"site IN ({','.join('?' * len(f.sites))})")
        params += list(f.sites)
    if f.state == "live":
        where.append("state <> 'resolved'")
    elif f.state:
        where.append("state = ?")
        params.append(f.state)
    for col, val in (("site", f.site), ("location", f.location), ("kind", f.kind), ("assignee", f.assignee)):
        if val:
            where.append(f"{col} = ?")
            params.append(val)
    if f.since:
        where.append("opened_at >= ?")
        params.append(utc_iso(f.since))
    if f.until:
        where.append("opened_at < ?")
        params.append(utc_iso(f.until))
    return " AND ".join(where), params
