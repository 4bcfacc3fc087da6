"""The deliveries half of central's store: every message to a person or to the broker is a row in
``deliveries`` before it is sent, and every attempt a row in ``delivery_attempts``; digests collapse many
rows into one.

:class:`central.notify.Dispatcher` decides who is told, when, and how often it retries; the methods here keep
what it decided. A delivery is claimed with a conditional update, so several workers can send.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from central.records import AlertMessage, Attempt, Delivery, DeliveryRecord
from smileloop_core.clock import utc_iso

if TYPE_CHECKING:
    from central.db import Database

_INSERT = ("INSERT INTO deliveries (id, alert_id, purpose, contact, url, state, next_at, created_at, payload) "
           "VALUES (?,?,?,?,?,?,?,?,?)")


class DeliveryStore:
    """Mixed into :class:`central.store.CentralStore`; needs its ``db``."""

    db: Database

    # --- to people ------------------------------------------------------------------------------
    def queue_delivery(self, alert_id: str, purpose: str, contact: str, url: str, state: str, next_at: datetime,
                       now: datetime, body: str | None = None) -> bool:
        """A delivery to send at ``next_at`` (``state`` ``pending``, or ``digest`` to collapse); False if this
        alert already has one for this purpose and URL."""
        return bool(self.db.execute(
            _INSERT + " ON CONFLICT DO NOTHING",
            (str(uuid.uuid4()), alert_id, purpose, contact, url, state, utc_iso(next_at), utc_iso(now),
             json.dumps({"body": body}) if body else None)))

    def due_deliveries(self, now: datetime, limit: int = 50) -> list[Delivery]:
        """Pending deliveries to people (not the broker's) due at ``now``, oldest first."""
        rows = self.db.query("SELECT * FROM deliveries WHERE state = 'pending' AND contact <> 'mqtt' "
                             "AND next_at <= ? ORDER BY next_at LIMIT ?", (utc_iso(now), limit))
        return [_delivery(r) for r in rows]

    def claim_delivery(self, delivery_id: str) -> bool:
        """Take a pending delivery to send it; False if another worker has it."""
        return bool(self.db.execute("UPDATE deliveries SET state = 'sending' WHERE id = ? AND state = 'pending'",
                                    (delivery_id,)))

    def delivery_sent(self, delivery_id: str, attempts: int, at: datetime) -> None:
        with self.db.transaction():
            self._attempt(delivery_id, at, None)
            self.db.execute("UPDATE deliveries SET state = 'sent', attempts = ?, sent_at = ? WHERE id = ?",
                            (attempts, utc_iso(at), delivery_id))

    def delivery_failed(self, delivery_id: str, attempts: int, at: datetime, error: str, *,
                        retry_at: datetime | None) -> None:
        """Record a failed attempt; the delivery is tried again at ``retry_at``, or never (None: failed)."""
        with self.db.transaction():
            self._attempt(delivery_id, at, error)
            self.db.execute("UPDATE deliveries SET state = ?, attempts = ?, next_at = ?, last_error = ? WHERE id = ?",
                            ("failed" if retry_at is None else "pending", attempts, utc_iso(retry_at or at), error,
                             delivery_id))

    def _attempt(self, delivery_id: str, at: datetime, error: str | None) -> None:
        self.db.execute("INSERT INTO delivery_attempts (delivery_id, at, ok, error) VALUES (?,?,?,?)",
                        (delivery_id, utc_iso(at), 0 if error else 1, error))

    # --- digests --------------------------------------------------------------------------------
    def due_digest_urls(self, now: datetime) -> list[str]:
        """URLs whose oldest digest row is due."""
        return [str(r["url"]) for r in self.db.query(
            "SELECT DISTINCT url FROM deliveries WHERE state = 'digest' AND next_at <= ?", (utc_iso(now),))]

    def digest_rows(self, url: str) -> list[Delivery]:
        """The deliveries waiting for the next digest to ``url``, oldest first."""
        return [_delivery(r) for r in self.db.query(
            "SELECT * FROM deliveries WHERE state = 'digest' AND url = ? ORDER BY created_at", (url,))]

    def add_digest(self, contact: str, url: str, payload: dict[str, Any], now: datetime) -> str:
        """One pending 'digest' delivery in place of the digest rows of ``url`` (marked ``digested``); its id."""
        digest_id = str(uuid.uuid4())
        at = utc_iso(now)
        with self.db.transaction():
            self.db.execute(_INSERT, (digest_id, f"digest:{digest_id}", "digest", contact, url, "pending", at, at,
                                      json.dumps(payload)))
            self.db.execute("UPDATE deliveries SET state = 'digested', digest_id = ? WHERE state = 'digest' "
                            "AND url = ?", (digest_id, url))
        return digest_id

    def deliveries(self, alert_id: str) -> list[DeliveryRecord]:
        """Each delivery of an alert (the digests it went out in included) with its attempts."""
        rows = self.db.query("SELECT id, purpose, contact, url, state, attempts, next_at, sent_at FROM deliveries "
                             "WHERE alert_id = ? OR id IN (SELECT digest_id FROM deliveries WHERE alert_id = ?) "
                             "ORDER BY created_at", (alert_id, alert_id))
        out: list[DeliveryRecord] = []
        for r in rows:
            tries = self.db.query("SELECT at, ok, error FROM delivery_attempts WHERE delivery_id = ? ORDER BY id",
                                  (r["id"],))
            out.append(DeliveryRecord(purpose=r["purpose"], contact=r["contact"], url=r["url"], state=r["state"],
                                      attempts=int(r["attempts"]), next_at=r["next_at"], sent_at=r["sent_at"],
                                      tries=[Attempt(at=t["at"], ok=int(t["ok"]), error=t["error"]) for t in tries]))
        return out

    # --- to the broker (recorded, so none is lost while disconnected) ---------------------------------
    def add_alert_message(self, alert_id: str, purpose: str, topic: str, payload: str,
                          now: datetime) -> AlertMessage | None:
        """Record an alert's MQTT message as pending; None if this one was recorded before (a redelivery, or
        another worker)."""
        row_id = str(uuid.uuid4())
        fresh = self.db.execute(
            _INSERT + " ON CONFLICT DO NOTHING",
            (row_id, alert_id, purpose, "mqtt", f"mqtt:{topic}", "pending", utc_iso(now), utc_iso(now), payload))
        return AlertMessage(row_id, topic, payload) if fresh else None

    def add_alert_messages(self, messages: Sequence[tuple[str, str, str, str]],
                           now: datetime) -> list[AlertMessage | None]:
        """Many of :meth:`add_alert_message` at once, (alert id, purpose, topic, payload) each: one look-up of
        those already recorded and one multi-row insert."""
        if not messages:
            return []
        at = utc_iso(now)
        seen: set[tuple[str, str]] = set()
        ids = sorted({m[0] for m in messages})
        for i in range(0, len(ids), 400):
            part = ids[i:i + 400]
            for row in self.db.query("SELECT alert_id, purpose FROM deliveries WHERE contact = 'mqtt' AND alert_id IN "
                                     f"({','.join('?' * len(part))})", part):
                seen.add((row["alert_id"], row["purpose"]))
        out: list[AlertMessage | None] = []
        rows: list[tuple[Any, ...]] = []
        for alert_id, purpose, topic, payload in messages:
            if (alert_id, purpose) in seen:
                out.append(None)
                continue
            seen.add((alert_id, purpose))
            row_id = str(uuid.uuid4())
            rows.append((row_id, alert_id, purpose, "mqtt", f"mqtt:{topic}", "pending", at, at, payload))
            out.append(AlertMessage(row_id, topic, payload))
        self.db.executemany(_INSERT + " ON CONFLICT DO NOTHING", rows)
        return out

    def record_alert_sends(self, results: Sequence[tuple[str, bool]], now: datetime) -> None:
        """One transaction for the attempts of many published alert messages: (delivery id, published?)."""
        if not results:
            return
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


def _delivery(row: dict[str, Any]) -> Delivery:
    payload = json.loads(row["payload"]) if row.get("payload") else {}
    return Delivery(id=row["id"], alert_id=row["alert_id"], purpose=row["purpose"], contact=row["contact"],
                    url=row["url"], attempts=int(row["attempts"]),
                    payload=payload if isinstance(payload, dict) else {})
