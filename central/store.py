"""Central's store: ratings (each once), alerts and their audit, deliveries, device status, outcomes, and the
org and rule documents (docs/PROTOCOL.md, "Central tables").

A SQLite file by default — anyone can open it with sqlite-utils or Datasette — or PostgreSQL by URL, with the
same schema through the migrations in :mod:`central.schema`. Every write that belongs together is one
transaction; uniqueness in the schema (not luck) is what makes a redelivered message harmless.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from central.db import Database, PostgresDatabase, open_database
from central.errors import AlertNotFound
from central.schema import migrate
from central.store_ingest import AlertRule, IngestStore, Late, MessageRatings, Opened, Rejection, StoredBatch, alert_row
from device.clock import parse_utc, utc_iso


@dataclass(frozen=True)
class AlertMessage:
    """An alert's message for the site's alerts topic, recorded as a delivery before it is published."""

    row_id: str
    topic: str
    payload: str


class CentralStore(IngestStore):
    """``CentralStore("central.db")`` or ``CentralStore("postgresql://user@host/db", schema="smileloop")``."""

    def __init__(self, target: str | Path, *, schema: str | None = None, busy_timeout: float = 10.0) -> None:
        self.target = target
        self.db: Database = open_database(target, schema=schema, busy_timeout=busy_timeout)
        self.path = Path(target) if self.db.dialect == "sqlite" else None
        migrate(self.db)

    def close(self) -> None:
        self.db.close()

    def drop(self) -> None:
        """PostgreSQL: drop this store's schema (tests). SQLite: nothing (delete the file)."""
        if isinstance(self.db, PostgresDatabase):
            self.db.drop_schema()

    # --- alerts -------------------------------------------------------------------------------
    def open_alert(self, candidate: dict[str, Any], now: datetime, *, cooldown: float = 0.0,
                   reopen_within: float = 0.0) -> Opened:
        """Open an alert for a rule's candidate, idempotently.

        A live alert with the same ``(kind, group_key)`` only counts one more hit. A resolved one resolved less
        than ``reopen_within`` seconds ago is reopened. Otherwise a new alert opens; if another alert of the same
        kind opened at the same location less than ``cooldown`` seconds ago, the new one is grouped under it and
        not notified on its own.
        """
        candidate = dict(candidate)
        cooldown = float(candidate.pop("cooldown", cooldown))
        at = utc_iso(now)
        key = candidate.get("group_key") or candidate.get("rating_id") or f"{candidate['site']}/{candidate['kind']}"
        db = self.db
        with db.transaction():
            if candidate.get("rating_id"):
                same = db.one("SELECT * FROM alerts WHERE kind = ? AND rating_id = ?",
                              (candidate["kind"], candidate["rating_id"]))
                if same:
                    return Opened("duplicate", alert_row(same))
            live = None if candidate.get("rating_id") else db.one(
                "SELECT * FROM alerts WHERE kind = ? AND group_key = ? AND state <> 'resolved'",
                (candidate["kind"], key))
            if live:
                db.execute("UPDATE alerts SET hits = hits + 1, last_seen_at = ?, detail = ?, title = ? WHERE id = ?",
                           (at, json.dumps(candidate.get("detail") or {}), candidate["title"], live["id"]))
                return Opened("repeated", alert_row(live))
            if reopen_within > 0 and not candidate.get("rating_id"):
                since = utc_iso(now - timedelta(seconds=reopen_within))
                old = db.one("SELECT * FROM alerts WHERE kind = ? AND group_key = ? AND state = 'resolved' "
                             "AND resolved_at >= ? ORDER BY resolved_at DESC LIMIT 1", (candidate["kind"], key, since))
                if old:
                    db.execute("UPDATE alerts SET state = 'open', reopened = reopened + 1, level = 0, "
                               "escalated_at = NULL, acked_by = NULL, acked_at = NULL, last_seen_at = ?, "
                               "hits = hits + 1, notified_at = NULL, detail = ? WHERE id = ?",
                               (at, json.dumps(candidate.get("detail") or {}), old["id"]))
                    self.audit(old["id"], "central", "reopened", "resolved", "open", now, {"why": "came back"})
                    return Opened("reopened", self.alert(old["id"]))
            parent: dict[str, Any] | None = None
            if cooldown > 0:
                since = utc_iso(now - timedelta(seconds=cooldown))
                parent = db.one(
                    "SELECT * FROM alerts WHERE kind = ? AND site = ? AND COALESCE(location, '') = ? "
                    "AND parent_id IS NULL AND state <> 'resolved' AND opened_at >= ? ORDER BY opened_at LIMIT 1",
                    (candidate["kind"], candidate["site"], candidate.get("location") or "", since))
            alert = {"id": str(uuid.uuid4()), "state": "open", "opened_at": at, "location": None, "device_id": None,
                     "rating_id": None, "severity": "alert", **candidate, "group_key": key,
                     "parent_id": parent["id"] if parent else None}
            alert.pop("_action", None)
            changed = db.execute(
                "INSERT INTO alerts (id, kind, site, location, device_id, rating_id, state, opened_at, title, detail, "
                "group_key, severity, parent_id, last_seen_at, notified_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT DO NOTHING",
                (alert["id"], alert["kind"], alert["site"], alert["location"], alert["device_id"], alert["rating_id"],
                 "open", at, alert["title"], json.dumps(alert.get("detail") or {}), key, alert["severity"],
                 alert["parent_id"], at, at if parent else None))
            if not changed:  # another worker opened it between our read and our insert
                return Opened("duplicate", alert)
            if parent:
                db.execute("UPDATE alerts SET hits = hits + 1, last_seen_at = ? WHERE id = ?", (at, parent["id"]))
                self.audit(alert["id"], "central", "grouped", None, "open", now, {"under": parent["id"]})
                return Opened("grouped", self.alert(alert["id"]))
            self.audit(alert["id"], "central", "opened", None, "open", now, None)
            return Opened("opened", self.alert(alert["id"]))

    def audit(self, alert_id: str, actor: str, action: str, from_state: str | None, to_state: str | None,
              at: datetime, note: dict[str, Any] | None) -> None:
        self.db.execute("INSERT INTO alert_audit (alert_id, at, actor, action, from_state, to_state, note) "
                        "VALUES (?,?,?,?,?,?,?)", (alert_id, utc_iso(at), actor, action, from_state, to_state,
                                                   json.dumps(note) if note else None))

    def alert(self, alert_id: str) -> dict[str, Any]:
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
               limit: int = 100) -> list[dict[str, Any]]:
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

    def audit_trail(self, alert_id: str) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT at, actor, action, from_state, to_state, note FROM alert_audit "
                             "WHERE alert_id = ? ORDER BY id", (alert_id,))
        for r in rows:
            r["note"] = json.loads(r["note"]) if r["note"] else None
        return rows

    def mark_notified(self, alert_id: str, at: datetime) -> None:
        self.db.execute("UPDATE alerts SET notified_at = ? WHERE id = ? AND notified_at IS NULL",
                        (utc_iso(at), alert_id))

    def unnotified_alerts(self) -> list[dict[str, Any]]:
        return [alert_row(r) for r in self.db.query(
            "SELECT * FROM alerts WHERE notified_at IS NULL ORDER BY opened_at")]

    # --- alert messages on the broker (recorded as deliveries, so none is lost while disconnected) ------------
    def add_alert_message(self, alert_id: str, purpose: str, topic: str, payload: str,
                          now: datetime) -> AlertMessage | None:
        """Record an alert's MQTT message as pending; None if this one was recorded before (a redelivery, or
        another worker)."""
        row_id = str(uuid.uuid4())
        fresh = self.db.execute(
            "INSERT INTO deliveries (id, alert_id, purpose, contact, url, state, next_at, created_at, payload) "
            "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (row_id, alert_id, purpose, "mqtt", f"mqtt:{topic}", "pending", utc_iso(now), utc_iso(now), payload))
        return AlertMessage(row_id, topic, payload) if fresh else None

    def record_alert_sends(self, results: list[tuple[str, bool]], now: datetime) -> None:
        """One transaction for the attempts of many published alert messages: (delivery id, published?)."""
        at = utc_iso(now)
        with self.db.transaction():
            self.db.executemany("INSERT INTO delivery_attempts (delivery_id, at, ok, error) VALUES (?,?,?,?)",
                                [(rid, at, 1 if ok else 0, None if ok else "not connected to the broker")
                                 for rid, ok in results])
            self.db.executemany("UPDATE deliveries SET state = ?, attempts = attempts + 1, sent_at = ? WHERE id = ?",
                                [("sent" if ok else "pending", at if ok else None, rid) for rid, ok in results])

    def pending_alert_messages(self, limit: int = 500) -> list[AlertMessage]:
        rows = self.db.query("SELECT id, url, payload FROM deliveries WHERE contact = 'mqtt' AND state = 'pending' "
                             "ORDER BY created_at LIMIT ?", (limit,))
        return [AlertMessage(r["id"], r["url"].removeprefix("mqtt:"), r["payload"]) for r in rows]

    def is_outage(self, error: BaseException) -> bool:
        """Is ``error`` the store being unavailable (locked, connection lost) rather than one row it refuses?"""
        return self.db.is_outage(error)

    def writable(self) -> bool:
        """Can the store take a write now? (Ingest asks this after a failed commit: the store's fault, or the
        message's?)"""
        return self.db.writable()

    # --- device status ------------------------------------------------------------------------
    def upsert_status(self, site: str, device: str, status: dict[str, Any], raw: str, received_at: datetime) -> None:
        """The latest status of a device; ``since`` is when its state last changed (offline since…)."""
        at = utc_iso(received_at)
        state = str(status.get("state") or "unknown")
        with self.db.transaction():
            prev = self.db.one("SELECT state, since FROM device_status WHERE site = ? AND device_id = ?",
                               (site, device))
            since = prev["since"] if prev and prev["state"] == state else at
            self.db.execute("DELETE FROM device_status WHERE site = ? AND device_id = ?", (site, device))
            self.db.execute(
                "INSERT INTO device_status (site, device_id, location, state, ts, received_at, since, backlog, "
                "oldest_unsent, disk_free_mb, raw) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (site, device, status.get("location"), state, status.get("ts"), at, since,
                 _int_or_none(status.get("backlog")), status.get("oldest_unsent"),
                 _float_or_none(status.get("disk_free_mb")), raw))

    def clock_offset(self, site: str, device: str, boot: str | None) -> float | None:
        """The device's clock offset from its latest status, if measured in the boot ``boot``."""
        row = self.db.one("SELECT raw FROM device_status WHERE site = ? AND device_id = ?", (site, device))
        if row is None or boot is None:
            return None
        try:
            status = json.loads(row["raw"])
        except ValueError:
            return None
        offset = status.get("clock_offset") if isinstance(status, dict) else None
        if status.get("boot") != boot or isinstance(offset, bool) or not isinstance(offset, int | float):
            return None
        return float(offset)

    def statuses(self, site: str | None = None) -> list[dict[str, Any]]:
        if site:
            return self.db.query("SELECT * FROM device_status WHERE site = ? ORDER BY device_id", (site,))
        return self.db.query("SELECT * FROM device_status ORDER BY site, device_id")

    # --- outcomes ("you said, we did") ---------------------------------------------------------
    def add_outcome(self, alert_id: str, site: str, location: str, text: dict[str, str], at: datetime) -> None:
        self.db.execute("INSERT INTO outcomes (id, alert_id, site, location, text, resolved_at) VALUES (?,?,?,?,?,?) "
                        "ON CONFLICT DO NOTHING", (str(uuid.uuid4()), alert_id, site, location,
                                                   json.dumps(text, ensure_ascii=False), utc_iso(at)))

    def unpublished_outcome_locations(self) -> list[tuple[str, str]]:
        rows = self.db.query("SELECT DISTINCT site, location FROM outcomes WHERE published_at IS NULL")
        return [(r["site"], r["location"]) for r in rows]

    def outcomes(self, site: str, location: str, limit: int = 5) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT id, text, resolved_at FROM outcomes WHERE site = ? AND location = ? "
                             "ORDER BY resolved_at DESC, id LIMIT ?", (site, location, limit))
        return [{"id": r["id"], "text": json.loads(r["text"]), "resolved_at": r["resolved_at"]} for r in rows]

    def mark_outcomes_published(self, site: str, location: str, at: datetime) -> None:
        self.db.execute("UPDATE outcomes SET published_at = ? WHERE site = ? AND location = ? AND published_at IS NULL",
                        (utc_iso(at), site, location))

    # --- documents (org tree, rules) -----------------------------------------------------------
    def document(self, name: str) -> tuple[dict[str, Any], int]:
        row = self.db.one("SELECT body, version FROM documents WHERE name = ?", (name,))
        return (json.loads(row["body"]), int(row["version"])) if row else ({}, 0)

    def put_document(self, name: str, body: dict[str, Any], at: datetime) -> int:
        with self.db.transaction():
            _, version = self.document(name)
            self.db.execute("DELETE FROM documents WHERE name = ?", (name,))
            self.db.execute("INSERT INTO documents (name, body, version, updated_at) VALUES (?,?,?,?)",
                            (name, json.dumps(body, ensure_ascii=False), version + 1, utc_iso(at)))
        return version + 1

    # --- reading ------------------------------------------------------------------------------
    def count(self, table: str) -> int:
        return int(self.db.scalar(f"SELECT count(*) AS n FROM [{table}]"))

    def query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[dict[str, Any]]:
        """Any read query with ``?`` placeholders, on either database."""
        return self.db.query(sql, params)


def _int_or_none(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _float_or_none(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def parse_time(text: str | None) -> datetime | None:
    return parse_utc(text) if text else None


__all__ = ["AlertMessage", "AlertRule", "CentralStore", "Late", "MessageRatings", "Opened", "Rejection", "StoredBatch",
           "parse_time"]
