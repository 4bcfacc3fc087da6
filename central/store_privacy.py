"""The SQL of data subject requests (docs/PRIVACY.md).

Where a visitor's address (or what they wrote) can be in central's store: ``ratings.contact`` (with its
``consent``), ``ratings.comment`` and ``comment_shown``; ``alerts.detail`` (the comment, JSON);
``alert_audit.note`` (their follow-up answers); ``deliveries.url``, ``payload`` and ``last_error`` (the
follow-up sent to them, a digest quoting them); ``delivery_attempts.error``; ``rejected.raw`` (a refused
message, as received).

:meth:`PrivacyStore.holdings` finds every such row; :meth:`PrivacyStore.erase` scrubs them all in one
transaction, with its audit row and one erase request per device that sent the ratings. The audit names the
subject by a hash of the address, never the address.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from central.store import CentralStore
from smileloop_core.clock import utc_iso

PLACES = ("ratings", "alerts", "alert_audit", "deliveries", "delivery_attempts", "rejected")
ERASED = "[erased]"
_PERSONAL = ("contact", "comment")
_RATING_COLUMNS = ("id, site, device_id, location, scale, value, ts, received_at, reason, comment, comment_shown, "
                   "contact, consent, rev")
_MIN_SCRUB = 4  # a comment shorter than this is not searched for elsewhere ("ok" would match everything)


@dataclass(frozen=True)
class Subject:
    """Who a request is about: an address (matched without regard to case, also as a follow-up URL quotes it)
    or one rating id."""

    contact: str | None = None
    rating_id: str | None = None

    def __post_init__(self) -> None:
        if (self.contact is None) == (self.rating_id is None):
            raise ValueError("a request is about one address or one rating id")
        if self.contact is not None and len(self.contact.strip()) < 3:
            raise ValueError("an address of fewer than 3 characters would match everything")

    @property
    def key(self) -> str:
        """What the audit keeps: ``contact:sha256:<hex>`` of the trimmed, lower-cased address, or ``rating:<id>``."""
        if self.contact is not None:
            return "contact:sha256:" + hashlib.sha256(self.contact.strip().lower().encode()).hexdigest()
        return f"rating:{self.rating_id}"


def variants(text: str | None) -> list[str]:
    """A text as it may be written where we look: as given, URL-quoted (a follow-up URL), JSON-escaped."""
    if not text or not text.strip():
        return []
    t = text.strip().lower()
    return list(dict.fromkeys([t, quote(t, safe="@+").lower(), json.dumps(t)[1:-1]]))


@dataclass(frozen=True)
class Holdings:
    """Every row that holds something of the subject, per place (:data:`PLACES`)."""

    subject: Subject
    places: dict[str, list[dict[str, Any]]]
    patterns: tuple[str, ...] = ()  # the texts scrubbed wherever they are
    alert_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def total(self) -> int:
        return sum(len(rows) for rows in self.places.values())

    @property
    def rating_ids(self) -> list[str]:
        return [r["id"] for r in self.places["ratings"]]

    def devices(self) -> dict[tuple[str, str], list[str]]:
        """(site, device) → the ids of its ratings held here (the device may still hold them too)."""
        out: dict[tuple[str, str], list[str]] = {}
        for r in self.places["ratings"]:
            out.setdefault((r["site"], r["device_id"]), []).append(r["id"])
        return out


@dataclass(frozen=True)
class DeviceRequest:
    """An erasure one device has to make in its own store."""

    id: str
    site: str
    device_id: str
    rating_ids: tuple[str, ...]
    created_at: str = ""
    done_at: str | None = None
    erased: int | None = None


class PrivacyStore:
    """``PrivacyStore(store)``: the privacy tables of a central store, and the search through the others."""

    def __init__(self, store: CentralStore) -> None:
        self.store = store
        self.db = store.db

    # --- finding ------------------------------------------------------------------------------------------
    def holdings(self, subject: Subject) -> Holdings:
        db = self.db
        if subject.contact is not None:
            patterns = variants(subject.contact)
            like, params = _like("comment", patterns)
            shown, more = _like("comment_shown", patterns)
            ratings = db.query(f"SELECT {_RATING_COLUMNS} FROM ratings WHERE lower(contact) = ? OR {like} OR {shown} "
                               "ORDER BY received_at, id", (patterns[0], *params, *more))
        else:
            ratings = db.query(f"SELECT {_RATING_COLUMNS} FROM ratings WHERE id = ?", (subject.rating_id,))
            patterns = [p for r in ratings for p in variants(r["contact"])]
        texts = [(r[key] or "").strip().lower() for r in ratings for key in ("comment", "comment_shown")]
        scrub = list(dict.fromkeys([*patterns, *(t for t in texts if len(t) >= _MIN_SCRUB)]))
        ids = [r["id"] for r in ratings]
        rejected_ids = [subject.rating_id] if subject.rating_id and not ids else ids
        alerts = self._where("SELECT id, kind, site, location, rating_id, state, opened_at, detail FROM alerts",
                             ("rating_id", ids), ("detail", scrub))
        alert_ids = [a["id"] for a in alerts]
        audit = self._where("SELECT id, alert_id, at, actor, action, note FROM alert_audit",
                            ("alert_id", alert_ids, "action = 'follow-up'"), ("note", scrub))
        deliveries = self._where("SELECT id, alert_id, purpose, url, state, created_at, sent_at, payload, "
                                 "last_error FROM deliveries", ("alert_id", alert_ids, "purpose = 'followup'"),
                                 ("url", patterns), ("payload", scrub), ("last_error", scrub))
        attempts = self._where("SELECT id, delivery_id, at, ok, error FROM delivery_attempts",
                               ("delivery_id", [d["id"] for d in deliveries if d["purpose"] == "followup"]),
                               ("error", scrub))
        rejected = self._where("SELECT id, received_at, topic, rating_id, reason, raw FROM rejected",
                               ("rating_id", rejected_ids), ("raw", scrub))
        places = {"ratings": ratings, "alerts": alerts, "alert_audit": audit, "deliveries": deliveries,
                  "delivery_attempts": attempts, "rejected": rejected}
        return Holdings(subject, places, tuple(scrub), frozenset(alert_ids))

    def _where(self, select: str, *clauses: tuple[Any, ...]) -> list[dict[str, Any]]:
        """``select`` WHERE any clause matches: ``(column, ids[, extra condition])`` matches by id,
        ``(column, patterns)`` on text columns by a case-blind LIKE; empty clauses are left out."""
        parts: list[str] = []
        params: list[Any] = []
        for clause in clauses:
            column, values = clause[0], list(clause[1])
            if not values:
                continue
            if column in ("rating_id", "alert_id", "delivery_id"):
                cond = f"{column} IN ({','.join('?' * len(values))})"
                parts.append(f"({cond} AND {clause[2]})" if len(clause) > 2 else cond)
                params += values
            else:
                like, more = _like(column, values)
                parts.append(like)
                params += more
        if not parts:
            return []
        return self.db.query(f"{select} WHERE {' OR '.join(parts)} ORDER BY id", params)

    # --- erasing ------------------------------------------------------------------------------------------
    def erase(self, held: Holdings, at: datetime, actor: str) -> list[DeviceRequest]:
        """Scrub every row of ``held`` and audit it, in one transaction; the devices' erase requests."""
        pats, ids, when = held.patterns, set(held.rating_ids), utc_iso(at)
        places = held.places
        db = self.db
        with self.store.transaction():
            db.executemany("UPDATE ratings SET contact = NULL, consent = NULL, comment = NULL, comment_shown = NULL "
                           "WHERE id = ?", [(i,) for i in ids])
            db.executemany("UPDATE alerts SET detail = ? WHERE id = ?",
                           [(scrub_json(a["detail"], pats, drop=a["rating_id"] in ids), a["id"])
                            for a in places["alerts"]])
            db.executemany("UPDATE alert_audit SET note = ? WHERE id = ?",
                           [(scrub_json(n["note"], pats, drop=n["alert_id"] in held.alert_ids
                                        and n["action"] == "follow-up"), n["id"]) for n in places["alert_audit"]])
            for d in places["deliveries"]:
                if d["purpose"] == "followup" or _matches(d["url"], pats):  # to the visitor: nothing of it stays
                    db.execute("UPDATE deliveries SET url = ?, payload = NULL, last_error = ?, state = CASE WHEN "
                               "state IN ('pending', 'sending', 'digest') THEN 'erased' ELSE state END WHERE id = ?",
                               (f"erased:{d['id']}", scrub_text(d["last_error"], pats), d["id"]))
                else:  # to staff, quoting the visitor
                    db.execute("UPDATE deliveries SET payload = ?, last_error = ? WHERE id = ?",
                               (scrub_json(d["payload"], pats), scrub_text(d["last_error"], pats), d["id"]))
            db.executemany("UPDATE delivery_attempts SET error = ? WHERE id = ?",
                           [(scrub_text(t["error"], pats), t["id"]) for t in places["delivery_attempts"]])
            db.executemany("UPDATE rejected SET raw = ? WHERE id = ?",
                           [(scrub_json(r["raw"], pats, ids=ids | {held.subject.rating_id or ""}) or ERASED, r["id"])
                            for r in places["rejected"]])
            requests = [DeviceRequest(str(uuid.uuid4()), site, device, tuple(rids), when)
                        for (site, device), rids in sorted(held.devices().items())]
            db.executemany("INSERT INTO privacy_requests (id, site, device_id, rating_ids, created_at) "
                           "VALUES (?,?,?,?,?)", [(r.id, r.site, r.device_id, json.dumps(r.rating_ids), when)
                                                  for r in requests])
            self.audit(at, actor, "erase", held.subject.key,
                       {"rows": {p: len(places[p]) for p in PLACES}, "ratings": sorted(ids),
                        "device_requests": [r.id for r in requests]})
        return requests

    # --- the audit and the devices' requests ---------------------------------------------------------------
    def audit(self, at: datetime, actor: str, action: str, subject: str, detail: dict[str, Any]) -> None:
        self.db.execute("INSERT INTO privacy_audit (at, actor, action, subject, detail) VALUES (?,?,?,?,?)",
                        (utc_iso(at), actor, action, subject, json.dumps(detail, sort_keys=True)))

    def audit_entries(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT id, at, actor, action, subject, detail FROM privacy_audit "
                             "ORDER BY id DESC LIMIT ?", (limit,))
        return [{**r, "detail": json.loads(r["detail"] or "{}")} for r in rows]

    def requests(self, *, pending: bool = False, site: str | None = None,
                 device: str | None = None) -> list[DeviceRequest]:
        sql, params = "SELECT * FROM privacy_requests WHERE 1 = 1", list[Any]()
        if pending:
            sql += " AND done_at IS NULL"
        if site is not None:
            sql, params = sql + " AND site = ?", [*params, site]
        if device is not None:
            sql, params = sql + " AND device_id = ?", [*params, device]
        return [DeviceRequest(r["id"], r["site"], r["device_id"], tuple(json.loads(r["rating_ids"])),
                              r["created_at"], r["done_at"], r["erased"])
                for r in self.db.query(sql + " ORDER BY created_at, id", params)]

    def device_status_raw(self, site: str, device: str) -> str | None:
        row = self.db.one("SELECT raw FROM device_status WHERE site = ? AND device_id = ?", (site, device))
        return str(row["raw"]) if row else None

    def mark_done(self, request_id: str, at: datetime, erased: int | None) -> bool:
        return bool(self.db.execute("UPDATE privacy_requests SET done_at = ?, erased = ? WHERE id = ? "
                                    "AND done_at IS NULL", (utc_iso(at), erased, request_id)))


# --- scrubbing ------------------------------------------------------------------------------------------------
def _like(column: str, patterns: Sequence[str]) -> tuple[str, list[str]]:
    conds = " OR ".join(f"lower({column}) LIKE ? ESCAPE '!'" for _ in patterns)
    return f"({conds})", ["%" + re.sub(r"([!%_])", r"!\1", p) + "%" for p in patterns]


def _matches(text: str | None, patterns: Iterable[str]) -> bool:
    return bool(text) and any(p in str(text).lower() for p in patterns)


def scrub_text(text: str | None, patterns: Sequence[str]) -> str | None:
    """``text`` with every pattern (any case) replaced by ``[erased]``."""
    if not text or not patterns:
        return text
    return re.sub("|".join(re.escape(p) for p in sorted(patterns, key=len, reverse=True)), ERASED, text,
                  flags=re.IGNORECASE)


def scrub_json(text: str | None, patterns: Sequence[str], *, drop: bool = False,
               ids: set[str] | frozenset[str] = frozenset()) -> str | None:
    """A JSON text scrubbed: ``contact`` and ``comment`` emptied at the top (``drop``) and in any object whose
    ``id`` is in ``ids``, every pattern replaced in every string; text that is not JSON is scrubbed as text."""
    if not text:
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return scrub_text(text, patterns)
    return json.dumps(_walk(value, patterns, drop, ids), ensure_ascii=False)


def _walk(value: Any, patterns: Sequence[str], drop: bool, ids: set[str] | frozenset[str]) -> Any:
    if isinstance(value, dict):
        hit = drop or (isinstance(value.get("id"), str) and value["id"] in ids)
        return {k: None if hit and k in _PERSONAL else _walk(v, patterns, False, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, patterns, False, ids) for v in value]
    return scrub_text(value, patterns) if isinstance(value, str) else value
