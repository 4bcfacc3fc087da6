"""Central's store: ratings (each once), alerts, and rejected messages (docs/PROTOCOL.md, "Central tables").

SQLite by default, one writer (the service's loop thread). Anyone can open the file with
sqlite-utils or Datasette. Schema changes go through the numbered migrations below.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from central.ingest import IncomingRating
from device.clock import utc_iso


def _m001_core(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE ratings (
            id TEXT PRIMARY KEY,
            device_id TEXT NOT NULL,
            site TEXT NOT NULL,
            location TEXT NOT NULL,
            scale TEXT NOT NULL,
            value INTEGER NOT NULL,
            sentiment TEXT NOT NULL,
            ts TEXT NOT NULL,
            received_at TEXT NOT NULL,
            seq INTEGER NOT NULL,
            reason TEXT,
            comment TEXT,
            contact TEXT,
            flags TEXT,
            boot_id TEXT,
            mono REAL,
            rev INTEGER NOT NULL DEFAULT 0
        )""")
    db.execute("CREATE INDEX ratings_site_ts ON ratings(site, ts)")
    db.execute("CREATE INDEX ratings_device_seq ON ratings(device_id, seq)")
    db.execute("""
        CREATE TABLE alerts (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            site TEXT NOT NULL,
            location TEXT,
            device_id TEXT,
            rating_id TEXT,
            state TEXT NOT NULL DEFAULT 'open',
            opened_at TEXT NOT NULL,
            title TEXT NOT NULL,
            detail TEXT,
            notified_at TEXT
        )""")
    # One alert per (kind, rating): a redelivered rating never opens a second alert.
    db.execute("CREATE UNIQUE INDEX alerts_kind_rating ON alerts(kind, rating_id) WHERE rating_id IS NOT NULL")
    db.execute("CREATE INDEX alerts_unnotified ON alerts(opened_at) WHERE notified_at IS NULL")
    db.execute("""
        CREATE TABLE rejected (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            received_at TEXT NOT NULL,
            topic TEXT NOT NULL,
            rating_id TEXT,
            reason TEXT NOT NULL,
            raw TEXT NOT NULL
        )""")


MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_core", _m001_core),
]


@dataclass(frozen=True)
class StoredBatch:
    new: list[IncomingRating]  # first time central sees these ids
    updated: list[IncomingRating]  # a newer rev (the visitor's follow-up answer)
    duplicates: int
    alerts: list[dict[str, Any]]  # alerts opened by this batch


AlertRule = Callable[[IncomingRating, str, str], dict[str, Any] | None]


class CentralStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=10)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=10000")
        self.db = sqlite_utils.Database(self._conn)
        self._migrate()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._lock:
            self._conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
            for name, step in MIGRATIONS:
                with self._write() as c:
                    if c.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                        continue
                    step(self.db)
                    c.execute("INSERT INTO _migrations VALUES (?, datetime('now'))", (name,))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- ingest -------------------------------------------------------------------------------
    def store_ratings(self, site: str, device: str, ratings: list[IncomingRating], received_at: datetime,
                      rule: AlertRule | None = None) -> StoredBatch:
        """Store each rating once (a newer rev updates the follow-up fields) and open alerts, in one transaction."""
        new: list[IncomingRating] = []
        updated: list[IncomingRating] = []
        alerts: list[dict[str, Any]] = []
        dup = 0
        at = utc_iso(received_at)
        with self._write() as c:
            ids = [r.id for r in ratings]
            known: dict[str, int] = {}
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                known.update(c.execute(f"SELECT id, rev FROM ratings WHERE id IN ({','.join('?' * len(chunk))})",
                                       chunk).fetchall())
            for r in ratings:
                if r.id not in known:
                    c.execute(
                        "INSERT INTO ratings (id, device_id, site, location, scale, value, sentiment, ts, "
                        "received_at, seq, reason, comment, contact, flags, boot_id, mono, rev) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (r.id, device, site, r.location, r.scale, r.value, r.sentiment, utc_iso(r.ts), at, r.seq,
                         r.reason, r.comment, r.contact, json.dumps(list(r.flags)) if r.flags else None,
                         r.boot_id, r.mono, r.rev))
                    known[r.id] = r.rev
                    new.append(r)
                    alert = rule(r, site, device) if rule else None
                    if alert is not None:
                        alert = self._open_alert(c, alert, at)
                        if alert:
                            alerts.append(alert)
                elif r.rev > known[r.id]:
                    c.execute("UPDATE ratings SET reason = ?, comment = ?, contact = ?, rev = ? WHERE id = ?",
                              (r.reason, r.comment, r.contact, r.rev, r.id))
                    known[r.id] = r.rev
                    updated.append(r)
                else:
                    dup += 1
        return StoredBatch(new=new, updated=updated, duplicates=dup, alerts=alerts)

    @staticmethod
    def _open_alert(c: sqlite3.Connection, alert: dict[str, Any], at: str) -> dict[str, Any] | None:
        alert = {"id": str(uuid.uuid4()), "state": "open", "opened_at": at, **alert}
        cur = c.execute(
            "INSERT OR IGNORE INTO alerts (id, kind, site, location, device_id, rating_id, state, opened_at, "
            "title, detail) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (alert["id"], alert["kind"], alert["site"], alert.get("location"), alert.get("device_id"),
             alert.get("rating_id"), alert["state"], at, alert["title"], json.dumps(alert.get("detail") or {})))
        return alert if cur.rowcount else None

    def reject(self, topic: str, raw: bytes, reason: str, received_at: datetime, rating_id: str | None = None) -> None:
        text = raw.decode("utf-8", errors="replace")
        with self._write() as c:
            c.execute("INSERT INTO rejected (received_at, topic, rating_id, reason, raw) VALUES (?,?,?,?,?)",
                      (utc_iso(received_at), topic, rating_id, reason, text))

    def mark_notified(self, alert_id: str, at: datetime) -> None:
        with self._write() as c:
            c.execute("UPDATE alerts SET notified_at = ? WHERE id = ?", (utc_iso(at), alert_id))

    # --- reading ------------------------------------------------------------------------------
    def unnotified_alerts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [_alert_row(r) for r in self.db.query(
                "SELECT * FROM alerts WHERE notified_at IS NULL ORDER BY opened_at")]

    def count(self, table: str) -> int:
        with self._lock:
            return int(self._conn.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0])

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query(sql, params))


def _alert_row(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["detail"] = json.loads(row["detail"]) if row.get("detail") else {}
    return out
