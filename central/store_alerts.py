"""The alerts half of central's store: opening an alert idempotently, reading alerts, and the lifecycle's
writes (acknowledge, resolve, recover, reopen, escalate), each change with its row in ``alert_audit``.

The rules of the lifecycle (who may do what, in which state) live in :mod:`central.lifecycle` and
:mod:`central.sla`; the methods here only write what those modules decided, inside their transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from central.errors import AlertNotFound
from central.records import Alert, AuditEntry, Candidate, Opened
from smileloop_core.clock import utc_iso

if TYPE_CHECKING:
    from central.db import Database


class AlertStore:
    """Mixed into :class:`central.store.CentralStore`; needs its ``db``."""

    db: Database

    # --- opening --------------------------------------------------------------------------------
    def open_alert(self, candidate: Candidate, now: datetime, *, cooldown: float = 0.0,
                   reopen_within: float = 0.0) -> Opened:
        """Open an alert for a rule's candidate, idempotently.

        A live alert with the same ``(kind, group_key)`` only counts one more hit. A resolved one resolved less
        than ``reopen_within`` seconds ago is reopened. Otherwise a new alert opens; if another alert of the same
        kind opened at the same location less than ``cooldown`` seconds ago (the candidate's own cooldown, when
        it has one), the new one is grouped under it and not notified on its own.
        """
        if candidate.cooldown is not None:
            cooldown = candidate.cooldown
        at, key, kind = utc_iso(now), candidate.key, candidate.kind
        detail = json.dumps(candidate.detail or {})
        db = self.db
        with db.transaction():
            if candidate.rating_id:
                same = db.one("SELECT * FROM alerts WHERE kind = ? AND rating_id = ?", (kind, candidate.rating_id))
                if same:
                    return Opened("duplicate", alert_row(same))
            else:
                live = db.one("SELECT * FROM alerts WHERE kind = ? AND group_key = ? AND state <> 'resolved'",
                              (kind, key))
                if live:
                    db.execute("UPDATE alerts SET hits = hits + 1, last_seen_at = ?, detail = ?, title = ? "
                               "WHERE id = ?", (at, detail, candidate.title, live["id"]))
                    return Opened("repeated", alert_row(live))
                if reopen_within > 0:
                    since = utc_iso(now - timedelta(seconds=reopen_within))
                    old = db.one("SELECT * FROM alerts WHERE kind = ? AND group_key = ? AND state = 'resolved' "
                                 "AND resolved_at >= ? ORDER BY resolved_at DESC LIMIT 1", (kind, key, since))
                    if old:
                        db.execute("UPDATE alerts SET state = 'open', reopened = reopened + 1, level = 0, "
                                   "escalated_at = NULL, acked_by = NULL, acked_at = NULL, last_seen_at = ?, "
                                   "hits = hits + 1, notified_at = NULL, detail = ? WHERE id = ?",
                                   (at, detail, old["id"]))
                        self.audit(old["id"], "central", "reopened", "resolved", "open", now, {"why": "came back"})
                        return Opened("reopened", self.alert(old["id"]))
            parent = self.cooldown_parent(kind, candidate.site, candidate.location,
                                          now - timedelta(seconds=cooldown)) if cooldown > 0 else None
            fresh = new_alert(candidate, str(uuid.uuid4()), at, parent)
            changed = db.execute(INSERT_ALERT + " ON CONFLICT DO NOTHING", insert_params(fresh))
            if not changed:  # another worker opened it between our read and our insert
                return Opened("duplicate", fresh)
            if parent:
                db.execute("UPDATE alerts SET hits = hits + 1, last_seen_at = ? WHERE id = ?", (at, parent))
                self.audit(fresh["id"], "central", "grouped", None, "open", now, {"under": parent})
                return Opened("grouped", self.alert(fresh["id"]))
            self.audit(fresh["id"], "central", "opened", None, "open", now, None)
            return Opened("opened", self.alert(fresh["id"]))

    def cooldown_parent(self, kind: str, site: str, location: str | None, since: datetime) -> str | None:
        """The first live, ungrouped alert of ``kind`` at the location opened since ``since``: new ones group
        under it."""
        row = self.db.one("SELECT id FROM alerts WHERE kind = ? AND site = ? AND COALESCE(location, '') = ? "
                          "AND parent_id IS NULL AND state <> 'resolved' AND opened_at >= ? "
                          "ORDER BY opened_at LIMIT 1", (kind, site, location or "", utc_iso(since)))
        return str(row["id"]) if row else None

    def audit(self, alert_id: str, actor: str, action: str, from_state: str | None, to_state: str | None,
              at: datetime, note: dict[str, Any] | None) -> None:
        self.db.execute("INSERT INTO alert_audit (alert_id, at, actor, action, from_state, to_state, note) "
                        "VALUES (?,?,?,?,?,?,?)", (alert_id, utc_iso(at), actor, action, from_state, to_state,
                                                   json.dumps(note) if note else None))

    # --- reading --------------------------------------------------------------------------------
    def alert(self, alert_id: str) -> Alert:
        """One alert by id or unique id prefix (at least 4 characters)."""
        row = self.db.one("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        if row is None and len(alert_id) >= 4:
            rows = self.db.query("SELECT * FROM alerts WHERE id LIKE ? LIMIT 2", (alert_id.replace("%", "") + "%",))
            if len(rows) > 1:
                raise AlertNotFound(f"alert id prefix {alert_id!r} is ambiguous; give more characters")
            row = rows[0] if rows else None
        if row is None:
            raise AlertNotFound(f"no alert with id {alert_id!r}")
        return alert_row(row)

    def alerts(self, *, state: str | None = None, site: str | None = None, kind: str | None = None,
               limit: int = 100) -> list[Alert]:
        """Newest first; ``state="live"``: open or acknowledged."""
        where, params = ["1 = 1"], []
        if state == "live":
            where.append("state <> 'resolved'")
        elif state:
            where.append("state = ?")
            params.append(state)
        for col, val in (("site", site), ("kind", kind)):
            if val:
                where.append(f"{col} = ?")
                params.append(val)
        sql = f"SELECT * FROM alerts WHERE {' AND '.join(where)} ORDER BY opened_at DESC, id LIMIT ?"
        return [alert_row(r) for r in self.db.query(sql, [*params, limit])]

    def live_alert(self, kind: str, group_key: str) -> Alert | None:
        """The live (open or acknowledged) alert for this cause, if any: there is at most one."""
        row = self.db.one("SELECT * FROM alerts WHERE kind = ? AND group_key = ? AND state <> 'resolved'",
                          (kind, group_key))
        return alert_row(row) if row else None

    def live_alerts(self, kind: str, group_keys: Sequence[str]) -> list[Alert]:
        """The live alerts of ``kind`` for many causes at once."""
        if not group_keys:
            return []
        return [alert_row(r) for r in self.db.query(
            f"SELECT * FROM alerts WHERE kind = ? AND state <> 'resolved' AND group_key IN "
            f"({','.join('?' * len(group_keys))})", (kind, *group_keys))]

    def grouped_under(self, alert_id: str) -> list[Alert]:
        """The live alerts grouped under this one (they close with it)."""
        return [alert_row(r) for r in self.db.query(
            "SELECT * FROM alerts WHERE parent_id = ? AND state <> 'resolved' ORDER BY opened_at, id", (alert_id,))]

    def unnotified_alerts(self) -> list[Alert]:
        return [alert_row(r) for r in self.db.query(
            "SELECT * FROM alerts WHERE notified_at IS NULL ORDER BY opened_at")]

    def audit_trail(self, alert_id: str) -> list[AuditEntry]:
        rows = self.db.query("SELECT at, actor, action, from_state, to_state, note FROM alert_audit "
                             "WHERE alert_id = ? ORDER BY id", (alert_id,))
        return [AuditEntry(at=r["at"], actor=r["actor"], action=r["action"], from_state=r["from_state"],
                           to_state=r["to_state"], note=json.loads(r["note"]) if r["note"] else None) for r in rows]

    def followup_contacts(self, alert_id: str) -> list[str]:
        """Contact details visitors left (with consent) on the ratings of this alert and those grouped under it."""
        rows = self.db.query("SELECT contact FROM ratings WHERE contact IS NOT NULL AND id IN "
                             "(SELECT rating_id FROM alerts WHERE id = ? OR parent_id = ?)", (alert_id, alert_id))
        return [str(r["contact"]) for r in rows]

    # --- lifecycle writes (the caller checks the transition, in its transaction) ----------------------
    def mark_notified(self, alert_id: str, at: datetime) -> None:
        self.db.execute("UPDATE alerts SET notified_at = ? WHERE id = ? AND notified_at IS NULL",
                        (utc_iso(at), alert_id))

    def set_acknowledged(self, alert_id: str, by: str, at: datetime) -> None:
        self.db.execute("UPDATE alerts SET state = 'acknowledged', acked_by = ?, acked_at = ? WHERE id = ?",
                        (by, utc_iso(at), alert_id))

    def set_resolved(self, alert_id: str, by: str, at: datetime, root_cause: str, action: str) -> None:
        self.db.execute("UPDATE alerts SET state = 'resolved', resolved_by = ?, resolved_at = ?, root_cause = ?, "
                        "action = ? WHERE id = ?", (by, utc_iso(at), root_cause, action, alert_id))

    def set_recovered(self, alert_id: str, why: str, at: datetime) -> None:
        """Resolved by central: the condition cleared by itself (unless someone resolved it first)."""
        self.db.execute("UPDATE alerts SET state = 'resolved', resolved_by = 'central', resolved_at = ?, "
                        "root_cause = ?, action = ? WHERE id = ? AND state <> 'resolved'",
                        (utc_iso(at), f"recovered by itself: {why}", "none needed", alert_id))

    def set_assignee(self, alert_id: str, assignee: str | None) -> None:
        self.db.execute("UPDATE alerts SET assignee = ? WHERE id = ?", (assignee, alert_id))

    def set_reopened(self, alert_id: str) -> None:
        """Open again from the first level of the chain, unacknowledged."""
        self.db.execute("UPDATE alerts SET state = 'open', reopened = reopened + 1, level = 0, escalated_at = NULL, "
                        "acked_by = NULL, acked_at = NULL WHERE id = ?", (alert_id,))

    def set_escalated(self, alert_id: str, level: int, state: str, at: datetime) -> bool:
        """One level up from ``level``, if the alert is still at that level and in ``state`` (another worker
        may have moved it): whether this call did."""
        return bool(self.db.execute("UPDATE alerts SET level = level + 1, escalated_at = ? WHERE id = ? "
                                    "AND level = ? AND state = ?", (utc_iso(at), alert_id, level, state)))


def alert_row(row: dict[str, Any]) -> Alert:
    """A row of ``alerts`` as an :class:`Alert`: ``detail`` decoded."""
    out = dict(row)
    detail = row.get("detail")
    out["detail"] = json.loads(detail) if isinstance(detail, str) and detail else (detail or {})
    return cast(Alert, out)


def new_alert(c: Candidate, alert_id: str, at: str, parent_id: str | None) -> Alert:
    """The row a candidate becomes when it opens (grouped under ``parent_id``, if any: already notified)."""
    return Alert(id=alert_id, kind=c.kind, site=c.site, location=c.location, device_id=c.device_id,
                 rating_id=c.rating_id, state="open", opened_at=at, title=c.title, detail=c.detail or {},
                 notified_at=at if parent_id else None, group_key=c.key, severity=c.severity, parent_id=parent_id,
                 hits=1, last_seen_at=at, level=0, escalated_at=None, acked_by=None, acked_at=None,
                 resolved_by=None, resolved_at=None, root_cause=None, action=None, reopened=0,
                 assignee=None)


def insert_params(a: Alert) -> tuple[Any, ...]:
    return (a["id"], a["kind"], a["site"], a["location"], a["device_id"], a["rating_id"], a["state"], a["opened_at"],
            a["title"], json.dumps(a["detail"]), a["group_key"], a["severity"], a["parent_id"], a["last_seen_at"],
            a["notified_at"])


INSERT_ALERT = ("INSERT INTO alerts (id, kind, site, location, device_id, rating_id, state, opened_at, title, "
                "detail, group_key, severity, parent_id, last_seen_at, notified_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
