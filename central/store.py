"""Central's store: ratings (each once), alerts and their audit, deliveries, device status, outcomes, and the
org and rule documents (docs/PROTOCOL.md, "Central tables").

A SQLite file by default — anyone can open it with sqlite-utils or Datasette — or PostgreSQL by URL, with the
same schema through the migrations in :mod:`central.schema`. Every write that belongs together is one
transaction; uniqueness in the schema (not luck) is what makes a redelivered message harmless.

The store owns its SQL: the rest of central calls named methods and gets typed values back
(:mod:`central.records`). The methods are grouped by concern — alerts (:mod:`central.store_alerts`), ingest
(:mod:`central.store_ingest`), deliveries (:mod:`central.store_deliveries`), what the rules read
(:mod:`central.store_reads`) — and the rest (device status, outcomes, documents) is here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from central.db import Database, PostgresDatabase, open_database
from central.records import Alert, AlertMessage, Candidate, DeviceStatus, Opened
from central.schema import migrate
from central.store_deliveries import DeliveryStore
from central.store_ingest import AlertRule, IngestStore, Late, MessageRatings, Rejection, StoredBatch, safe_text
from central.store_reads import ReadStore
from smileloop_core.clock import parse_utc, utc_iso
from smileloop_core.ids import is_id


class CentralStore(IngestStore, DeliveryStore, ReadStore):
    """``CentralStore("central.db")`` or ``CentralStore("postgresql://user@host/db", schema="smileloop")``."""

    def __init__(self, target: str | Path, *, schema: str | None = None, busy_timeout: float = 10.0,
                 create: bool = True) -> None:
        self.target = target
        self.db: Database = open_database(target, schema=schema, busy_timeout=busy_timeout, create=create)
        self.path = Path(target) if self.db.dialect == "sqlite" else None
        migrate(self.db)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.db.dialect

    def close(self) -> None:
        self.db.close()

    def drop(self) -> None:
        """PostgreSQL: drop this store's schema (tests). SQLite: nothing (delete the file)."""
        if isinstance(self.db, PostgresDatabase):
            self.db.drop_schema()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit for several store calls (a check and the change it allows, an alert and its
        deliveries); nested calls join the outer one."""
        with self.db.transaction():
            yield

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
        self.upsert_statuses([(site, device, status, raw)], received_at)

    def upsert_statuses(self, statuses: Sequence[tuple[str, str, dict[str, Any], str]], received_at: datetime) -> None:
        """Many devices' latest statuses in one statement: (site, device, status, raw JSON) each."""
        at = utc_iso(received_at)
        rows = []
        for site, device, status, raw in statuses:
            location = status.get("location")
            rows.append((site, device, location if is_id(location) else None,
                         safe_text(str(status.get("state") or "unknown"), 40), _text_or_none(status.get("ts")),
                         at, at, _int_or_none(status.get("backlog")), _text_or_none(status.get("oldest_unsent")),
                         _float_or_none(status.get("disk_free_mb")), safe_text(raw, 16_384)))
        self.db.executemany(
            "INSERT INTO device_status (site, device_id, location, state, ts, received_at, since, backlog, "
            "oldest_unsent, disk_free_mb, raw) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (site, device_id) DO UPDATE SET location = excluded.location, state = excluded.state, "
            "ts = excluded.ts, received_at = excluded.received_at, "
            "since = CASE WHEN device_status.state = excluded.state THEN device_status.since ELSE excluded.since END, "
            "backlog = excluded.backlog, oldest_unsent = excluded.oldest_unsent, "
            "disk_free_mb = excluded.disk_free_mb, raw = excluded.raw", rows)

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

    # --- who changed the organisation ------------------------------------------------------------
    def org_audit(self, at: datetime, actor: str, action: str, target: str, before: str, after: str) -> None:
        self.db.execute("INSERT INTO org_audit (at, actor, action, target, before, after) VALUES (?,?,?,?,?,?)",
                        (utc_iso(at), actor, action, target, before, after))

    def org_audit_entries(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest changes first: at, actor, action, target (before/after kept for review by SQL)."""
        return self.db.query("SELECT at, actor, action, target FROM org_audit ORDER BY id DESC LIMIT ?", (limit,))

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
        """Any read query with ``?`` placeholders, on either database: for tests and a look by hand. Central's
        own code calls the named methods."""
        return self.db.query(sql, params)


def _text_or_none(v: Any) -> str | None:
    return safe_text(v, 64) if isinstance(v, str) else None


def _int_or_none(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) and abs(v) < 2**53 else None


def _float_or_none(v: Any) -> float | None:
    if not isinstance(v, int | float) or isinstance(v, bool) or not -1e15 < v < 1e15:
        return None
    return float(v)


def parse_time(text: str | None) -> datetime | None:
    return parse_utc(text) if text else None


__all__ = ["Alert", "AlertMessage", "AlertRule", "Candidate", "CentralStore", "DeviceStatus", "Late", "MessageRatings",
           "Opened", "Rejection", "StoredBatch", "parse_time"]
