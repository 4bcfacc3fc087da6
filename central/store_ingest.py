"""The ingest half of central's store: ratings stored once per message batch, rejections, per-rating alerts
opened in bulk, and the "backlog arrived" summaries.

One call stores a whole group of messages in the caller's transaction (group commit): one look-up of the
known ids, one multi-row insert, one look-up and one multi-row insert for the per-rating alerts. The cost per
message is then a few rows, not a few round trips — what lets PostgreSQL keep up, where each statement is a
round trip.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from central.ingest import IncomingRating
from central.moderation import moderate, without_contacts
from central.records import Alert, Candidate, Opened
from central.store_alerts import INSERT_ALERT, AlertStore, alert_row, insert_params, new_alert
from central.store_dashboard import mark_dirty
from smileloop_core.clock import utc_iso

RAW_KEEP = 65_536  # characters of a rejected payload kept for the record; the rest is cut (and said so)

AlertRule = Callable[[IncomingRating, str, str], Candidate | None]  # (rating, site, device) → its alert


@dataclass(frozen=True)
class StoredBatch:
    new: list[IncomingRating]  # first time central sees these ids
    updated: list[IncomingRating]  # a newer rev (the visitor's follow-up answer)
    duplicates: int
    alerts: list[Opened]  # alerts opened (or grouped) by this batch; redeliveries left out
    foreign: list[tuple[str, str]] = field(default_factory=list)  # (id, why): the id is another device's


@dataclass(frozen=True)
class MessageRatings:
    """The valid ratings of one message, with where they came from."""

    site: str
    device: str
    ratings: list[IncomingRating]


@dataclass(frozen=True)
class Rejection:
    topic: str
    raw: bytes
    reason: str
    rating_id: str | None = None


@dataclass(frozen=True)
class Late:
    """Ratings that arrived ``after`` seconds or more after they were made: summarised, not paged one by one."""

    after: float
    candidate: Callable[[str, str, dict[str, Any]], Candidate | None]  # (site, location, counts) → summary


def safe_text(text: str, limit: int | None = None) -> str:
    """Text any store keeps: NUL and unpaired surrogates escaped (PostgreSQL refuses the first, every encoder
    the second); cut to ``limit`` characters with a note."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + f"… [cut: {len(text) - limit} more characters]"
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class IngestStore(AlertStore):
    """Mixed into :class:`central.store.CentralStore`; opens alerts as :class:`AlertStore` does."""

    def reject(self, topic: str, raw: bytes, reason: str, received_at: datetime, rating_id: str | None = None) -> None:
        self.reject_many([Rejection(topic, raw, reason, rating_id)], received_at)

    def reject_many(self, rejections: Sequence[Rejection], received_at: datetime) -> None:
        at = utc_iso(received_at)
        self.db.executemany(
            "INSERT INTO rejected (received_at, topic, rating_id, reason, raw) VALUES (?,?,?,?,?)",
            [(at, safe_text(r.topic, 300), r.rating_id, safe_text(r.reason, 2000),
              safe_text(without_contacts(r.raw).decode("utf-8", errors="replace"), RAW_KEEP)) for r in rejections])

    def store_ratings(self, site: str, device: str, ratings: list[IncomingRating], received_at: datetime,
                      rule: AlertRule | None = None, cooldown: float = 0.0) -> StoredBatch:
        """Store each rating once (a newer rev updates the follow-up fields) and open the per-rating alerts,
        in one transaction."""
        return self.store_messages([MessageRatings(site, device, ratings)], received_at, rule=rule,
                                   cooldown=cooldown)[0]

    def store_messages(self, messages: Sequence[MessageRatings], received_at: datetime, *,
                       rule: AlertRule | None = None, cooldown: float = 0.0, late: Late | None = None,
                       rejections: Sequence[Rejection] = ()) -> list[StoredBatch]:
        """Store many messages' ratings and rejections in one transaction (joining the caller's, if any); one
        :class:`StoredBatch` per message. A rating id already stored for another device or site is not
        touched (its revision is refused): ids are matched with the device and site, never alone."""
        at = utc_iso(received_at)
        db = self.db
        out: list[StoredBatch] = []
        with db.transaction():
            if rejections:
                self.reject_many(rejections, received_at)
            known = self._known([r.id for m in messages for r in m.ratings])
            inserts: list[tuple[Any, ...]] = []
            fresh_alerts: list[tuple[Candidate, float]] = []
            late_counts: dict[tuple[str, str], dict[str, Any]] = {}
            per_message: list[tuple[list[IncomingRating], list[IncomingRating], int, list[tuple[str, str]]]] = []
            touched: set[tuple[str, str]] = set()  # (site, UTC day) whose dashboard rollups are now stale
            for m in messages:
                new: list[IncomingRating] = []
                updated: list[IncomingRating] = []
                foreign: list[tuple[str, str]] = []
                dup = 0
                for r in m.ratings:
                    prev = known.get(r.id)
                    if prev is None:
                        inserts.append(row := _row(r, m.site, m.device, at))
                        touched.add((m.site, row[7][:10]))
                        known[r.id] = (r.rev, m.site, m.device)
                        new.append(r)
                    elif (prev[1], prev[2]) != (m.site, m.device):
                        foreign.append((r.id, "this rating id belongs to another device"))
                    elif r.rev > prev[0]:
                        stored = db.query("UPDATE ratings SET reason = ?, comment = ?, comment_shown = ?, "
                                          "contact = ?, consent = ?, rev = ? WHERE id = ? AND site = ? AND "
                                          "device_id = ? RETURNING ts", (r.reason, *_comments(r), r.contact,
                                                                        _consent(r), r.rev, r.id, m.site, m.device))
                        touched.update((m.site, str(x["ts"])[:10]) for x in stored)
                        known[r.id] = (r.rev, m.site, m.device)
                        updated.append(r)
                        self._follow_up_alerts(r, received_at)
                    else:
                        dup += 1
                for r in new:
                    candidate = rule(r, m.site, m.device) if rule else None
                    if late is not None and (received_at - r.ts).total_seconds() >= late.after:
                        _count_late(late_counts.setdefault((m.site, r.location), _empty_counts()), r,
                                    negative=candidate is not None)
                    elif candidate is not None:
                        fresh_alerts.append((candidate, cooldown if candidate.cooldown is None
                                             else float(candidate.cooldown)))
                per_message.append((new, updated, dup, foreign))
            # A rating another worker stored in the meantime is skipped here, and its alert stays unique through
            # the (kind, rating_id) index.
            db.executemany(
                "INSERT INTO ratings (id, device_id, site, location, scale, value, sentiment, ts, received_at, seq, "
                "reason, comment, comment_shown, contact, consent, flags, boot_id, mono, rev, ts_device, ts_repaired) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING", inserts)
            opened = {o.alert["rating_id"]: o for o in self._open_rating_alerts(fresh_alerts, received_at)}
            summaries = self._late_summaries(late, late_counts, received_at) if late else []
            for i, (new, updated, dup, foreign) in enumerate(per_message):
                mine = [opened[r.id] for r in new if r.id in opened]
                if i == 0:
                    mine += summaries  # summaries span messages; reported once, with the first
                out.append(StoredBatch(new=new, updated=updated, duplicates=dup, alerts=mine, foreign=foreign))
            mark_dirty(db, touched, at)  # last: on PostgreSQL its row locks are held only until the commit
        return out

    def rating_with_contact(self, alert_id: str, contact: str) -> str | None:
        """The rating of this alert (or of one grouped under it) that left ``contact``; None if none does now."""
        row = self.db.one("SELECT id FROM ratings WHERE contact = ? AND id IN (SELECT rating_id FROM alerts "
                          "WHERE id = ? OR parent_id = ?) ORDER BY id LIMIT 1", (contact, alert_id, alert_id))
        return str(row["id"]) if row else None

    def rating_contact(self, rating_id: str) -> str | None:
        """The contact a visitor left with this rating, while retention keeps it."""
        row = self.db.one("SELECT contact FROM ratings WHERE id = ?", (rating_id,))
        return str(row["contact"]) if row and row["contact"] else None

    def _known(self, ids: list[str]) -> dict[str, tuple[int, str, str]]:
        known: dict[str, tuple[int, str, str]] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            for row in self.db.query("SELECT id, rev, site, device_id FROM ratings "
                                     f"WHERE id IN ({','.join('?' * len(chunk))})", chunk):
                known[row["id"]] = (int(row["rev"]), row["site"], row["device_id"])
        return known

    def _follow_up_alerts(self, r: IncomingRating, at: datetime) -> None:
        """The visitor's follow-up answer (a newer rev) completes the detail of the rating's alert."""
        for row in self.db.query("SELECT id, state, detail FROM alerts WHERE rating_id = ?", (r.id,)):
            detail = json.loads(row["detail"] or "{}")
            detail.update(reason=r.reason, comment=moderate(r.comment))
            self.db.execute("UPDATE alerts SET detail = ? WHERE id = ?", (json.dumps(detail), row["id"]))
            self.audit(row["id"], "visitor", "follow-up", row["state"], row["state"], at,
                       {"rev": r.rev, "reason": r.reason, "comment": moderate(r.comment)})

    def _open_rating_alerts(self, candidates: list[tuple[Candidate, float]], now: datetime) -> list[Opened]:
        """Per-rating alerts in bulk: what :meth:`open_alert` does for one candidate with a ``rating_id``
        (unique per kind and rating; grouped under a live one of the same kind and location opened within its
        cooldown), with one read and one multi-row write for the whole batch."""
        if not candidates:
            return []
        db, at = self.db, utc_iso(now)
        existing: set[tuple[str, str | None]] = set()
        rating_ids = [c.rating_id for c, _ in candidates]
        for i in range(0, len(rating_ids), 400):
            chunk = rating_ids[i:i + 400]
            for row in db.query("SELECT kind, rating_id FROM alerts WHERE rating_id IN "
                                f"({','.join('?' * len(chunk))})", chunk):
                existing.add((row["kind"], row["rating_id"]))
        parents = self._cooldown_parents([(c, cooldown) for c, cooldown in candidates if cooldown > 0], now)
        rows: list[tuple[Any, ...]] = []
        audits: list[tuple[Any, ...]] = []
        hits: Counter[str] = Counter()
        made: list[tuple[str, str]] = []  # (alert id, action)
        for c, cooldown in candidates:
            if (c.kind, c.rating_id) in existing:
                continue
            existing.add((c.kind, c.rating_id))
            where = (c.kind, c.site, c.location or "")
            parent: str | None = None
            if cooldown > 0:
                parent = parents.get(where)
            alert_id = str(uuid.uuid4())
            rows.append(insert_params(new_alert(c, alert_id, at, parent)))
            if parent:
                hits[parent] += 1
                audits.append((alert_id, at, "central", "grouped", None, "open", json.dumps({"under": parent})))
                made.append((alert_id, "grouped"))
            else:
                audits.append((alert_id, at, "central", "opened", None, "open", None))
                made.append((alert_id, "opened"))
                if cooldown > 0:
                    parents[where] = alert_id  # the next ones of this batch group under it
        if not rows:
            return []
        db.executemany(INSERT_ALERT, rows)
        db.executemany("UPDATE alerts SET hits = hits + ?, last_seen_at = ? WHERE id = ?",
                       [(n, at, parent_id) for parent_id, n in hits.items()])
        db.executemany("INSERT INTO alert_audit (alert_id, at, actor, action, from_state, to_state, note) "
                       "VALUES (?,?,?,?,?,?,?)", audits)
        by_id: dict[str, Alert] = {}
        ids = [a for a, _ in made]
        for i in range(0, len(ids), 400):
            part = ids[i:i + 400]
            for row in db.query(f"SELECT * FROM alerts WHERE id IN ({','.join('?' * len(part))})", part):
                by_id[row["id"]] = alert_row(row)
        return [Opened(action, by_id[alert_id]) for alert_id, action in made]

    def _cooldown_parents(self, candidates: list[tuple[Candidate, float]],
                          now: datetime) -> dict[tuple[str, str, str], str | None]:
        """For each (kind, site, location) of the batch, the live ungrouped alert opened within that candidate's
        cooldown (see :meth:`cooldown_parent`), read with one query for the whole batch."""
        if not candidates:
            return {}
        since = {(c.kind, c.site, c.location or ""): utc_iso(now - timedelta(seconds=cd)) for c, cd in candidates}
        kinds = sorted({k for k, _, _ in since})
        sites = sorted({s for _, s, _ in since})
        out: dict[tuple[str, str, str], str | None] = {}
        for i in range(0, len(sites), 400):
            part = sites[i:i + 400]
            for row in self.db.query(
                    "SELECT id, kind, site, location, opened_at FROM alerts "
                    f"WHERE kind IN ({','.join('?' * len(kinds))}) AND site IN ({','.join('?' * len(part))}) "
                    "AND parent_id IS NULL AND state <> 'resolved' "
                    "AND opened_at >= ? ORDER BY opened_at, id", (*kinds, *part, min(since.values()))):
                where = (row["kind"], row["site"], row["location"] or "")
                if where in since and where not in out and row["opened_at"] >= since[where]:
                    out[where] = str(row["id"])
        return out

    def _late_summaries(self, late: Late, counts: dict[tuple[str, str], dict[str, Any]],
                        now: datetime) -> list[Opened]:
        """One "backlog arrived" alert per location: a live one takes the new counts (one more hit, no new
        page); otherwise one opens (and is paged once)."""
        out: list[Opened] = []
        firsts = {where: late.candidate(*where, c) for where, c in counts.items()}
        keys = sorted({c.key for c in firsts.values() if c is not None})
        live: dict[str, Alert] = {}
        for i in range(0, len(keys), 400):  # one look-up for every location of the batch
            for alert in self.live_alerts("backlog_arrived", keys[i:i + 400]):
                live[alert["group_key"] or ""] = alert
        at = utc_iso(now)
        updates: list[tuple[Any, ...]] = []
        for (site, location), first in firsts.items():
            if first is None:
                continue
            known = live.get(first.key)
            if known is None:
                opened = self.open_alert(first, now)
                if opened.action != "duplicate":
                    out.append(opened)
                continue
            merged = late.candidate(site, location, _merge_counts(known["detail"], counts[(site, location)]))
            if merged is not None:  # one more hit on the live summary: new counts, no new page
                updates.append((at, json.dumps(merged.detail), merged.title, known["id"]))
        self.db.executemany("UPDATE alerts SET hits = hits + 1, last_seen_at = ?, detail = ?, title = ? WHERE id = ?",
                            updates)
        return out


def _row(r: IncomingRating, site: str, device: str, at: str) -> tuple[Any, ...]:
    return (r.id, device, site, r.location, r.scale, r.value, r.sentiment, utc_iso(r.ts), at, r.seq, r.reason,
            *_comments(r), r.contact, _consent(r), json.dumps(list(r.flags)) if r.flags else None, r.boot_id, r.mono,
            r.rev, utc_iso(r.ts_device or r.ts), 1 if r.ts_device else 0)


def _comments(r: IncomingRating) -> tuple[str | None, str | None]:
    """(the comment as typed, for admins; the masked one, for everything else)."""
    original = r.comment_original if r.comment_original is not None else r.comment
    return original, moderate(original)


def _consent(r: IncomingRating) -> str | None:
    return json.dumps(r.consent) if r.contact and r.consent else None


def _empty_counts() -> dict[str, Any]:
    return {"ratings": 0, "negatives": 0, "reasons": {}, "oldest": None, "newest": None}


def _count_late(c: dict[str, Any], r: IncomingRating, *, negative: bool) -> None:
    ts = utc_iso(r.ts)
    c["ratings"] += 1
    c["oldest"] = min(c["oldest"] or ts, ts)
    c["newest"] = max(c["newest"] or ts, ts)
    if negative:
        c["negatives"] += 1
        if r.reason:
            c["reasons"][r.reason] = c["reasons"].get(r.reason, 0) + 1


def _merge_counts(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = {**old, **new}
    for key in ("ratings", "negatives"):
        out[key] = int(old.get(key) or 0) + int(new.get(key) or 0)
    reasons = Counter(dict(old.get("reasons") or {}))
    reasons.update(dict(new.get("reasons") or {}))
    out["reasons"] = dict(reasons.most_common())
    for key, pick in (("oldest", min), ("newest", max)):
        values = [v for v in (old.get(key), new.get(key)) if v]
        out[key] = pick(values) if values else None
    return out
