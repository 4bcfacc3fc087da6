"""What the console's dashboards read from central's store: hourly rollups of the visitors' ratings, kept fresh
by dirty marks, and the few raw reads a dashboard needs (latest comments, alerts, ratings for a CSV export).

Rollups (schema ``009_dashboard_rollups``): per site, UTC hour (``"2026-11-24T10"``) and location, ``rollup_hours``
counts the ratings with what the figures need (index points, negatives, NPS and CSAT counts) and
``rollup_reasons`` counts them per reason. Test taps and repeat presses are left out, as the rules' pattern reads
leave them out (:data:`central.store_reads.NOT_REPEAT`).

Freshness: ingest marks each (site, UTC day) it touches in ``rollup_dirty`` (:func:`mark_dirty`, one upsert per
pair and batch, every mark one ``gen`` higher). Before a read, :meth:`DashboardStore.refresh` recomputes the
marked days of the range from the ratings themselves (index ``ratings_site_ts``), so revisions and erasures are
right by construction, and clears a mark only if its ``gen`` is still the one it read: a rating stored while
the day was being recomputed leaves its mark for the next refresh. On PostgreSQL, refreshers of one site take
turns (an advisory lock); on SQLite the write transaction does that.

Kept apart from :class:`central.store.CentralStore` (which it is handed), like :class:`central.store_fleet.PushLog`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from central.store_reads import NOT_REPEAT
from smileloop_core.scales import SCALES

if TYPE_CHECKING:
    from central.db import Database
    from central.store import CentralStore

LOCK_KEY = 7243009  # PostgreSQL advisory lock class of the rollup refresh (the second key: the site)
RUN_DAYS = 31  # a refresh recomputes at most this many consecutive days of a site in one transaction

MARK_DIRTY = ("INSERT INTO rollup_dirty (site, day, marked_at, gen) VALUES (?,?,?,0) ON CONFLICT (site, day) "
              "DO UPDATE SET marked_at = excluded.marked_at, gen = rollup_dirty.gen + 1")


def mark_dirty(db: Database, pairs: Iterable[tuple[str, str]], at: str) -> None:
    """Mark (site, UTC day "YYYY-MM-DD") pairs stale, in the caller's transaction; sorted, so two writers lock
    the same rows in the same order."""
    db.executemany(MARK_DIRTY, [(site, day, at) for site, day in sorted(set(pairs))])


def _points() -> str:
    """Each rating's value mapped to 0–100 on its scale, as SQL."""
    arms = " ".join(f"WHEN '{s.name}' THEN (value - {s.low}) * 100.0 / {s.high - s.low}" for s in SCALES.values())
    return f"CAST(CASE scale {arms} END AS DOUBLE PRECISION)"


_KNOWN = ", ".join(f"'{name}'" for name in SCALES)
_MEASURES = ("n", "points", "negative", "nps_n", "promoters", "detractors", "csat_n", "csat_top")
_SUMS = ", ".join(f"sum({m}) AS {m}" for m in _MEASURES)
_REFRESH_HOURS = (
    "INSERT INTO rollup_hours (site, hour, location, n, points, negative, nps_n, promoters, detractors, csat_n, "
    f"csat_top) SELECT site, substr(ts, 1, 13), location, count(*), sum({_points()}), "
    "sum(CASE WHEN sentiment = 'negative' THEN 1 ELSE 0 END), sum(CASE WHEN scale = 'nps' THEN 1 ELSE 0 END), "
    "sum(CASE WHEN scale = 'nps' AND value >= 9 THEN 1 ELSE 0 END), "
    "sum(CASE WHEN scale = 'nps' AND value <= 6 THEN 1 ELSE 0 END), sum(CASE WHEN scale = 'csat5' THEN 1 ELSE 0 END), "
    "sum(CASE WHEN scale = 'csat5' AND value >= 4 THEN 1 ELSE 0 END) FROM ratings "
    f"WHERE site = ? AND ts >= ? AND ts < ? AND scale IN ({_KNOWN}) AND {NOT_REPEAT} "
    "GROUP BY site, substr(ts, 1, 13), location")
_REFRESH_REASONS = (
    "INSERT INTO rollup_reasons (site, hour, location, reason, n, negative) SELECT site, substr(ts, 1, 13), "
    "location, reason, count(*), sum(CASE WHEN sentiment = 'negative' THEN 1 ELSE 0 END) FROM ratings "
    f"WHERE site = ? AND ts >= ? AND ts < ? AND reason IS NOT NULL AND scale IN ({_KNOWN}) AND {NOT_REPEAT} "
    "GROUP BY site, substr(ts, 1, 13), location, reason")


@dataclass(frozen=True)
class Counts:
    """What the figures are computed from: ratings, their index points (0–100 each), negatives, NPS answers with
    promoters and detractors, CSAT answers with the top two boxes."""

    n: int = 0
    points: float = 0.0
    negative: int = 0
    nps_n: int = 0
    promoters: int = 0
    detractors: int = 0
    csat_n: int = 0
    csat_top: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.n + other.n, self.points + other.points, self.negative + other.negative,
                      self.nps_n + other.nps_n, self.promoters + other.promoters, self.detractors + other.detractors,
                      self.csat_n + other.csat_n, self.csat_top + other.csat_top)


@dataclass(frozen=True)
class Span:
    """Sites that share a time zone and the UTC hours ``[lo, hi)`` ("YYYY-MM-DDTHH") of a range of their local
    days. ``others``: every site *not* in ``sites`` (the sites the org does not describe, on UTC)."""

    sites: tuple[str, ...]
    lo: str
    hi: str
    others: bool = False


@dataclass(frozen=True)
class HourCounts:
    span: int  # index of its span in the read's spans
    hour: str
    counts: Counts


@dataclass(frozen=True)
class ReasonHour:
    span: int
    hour: str
    reason: str
    n: int
    negative: int


@dataclass(frozen=True)
class PlaceCounts:
    site: str
    location: str
    current: Counts = field(default_factory=Counts)
    previous: Counts = field(default_factory=Counts)


@dataclass(frozen=True)
class RatingRow:
    """A rating as dashboards and exports show it: the masked comment only, never the contact."""

    id: str
    site: str
    location: str
    device_id: str
    scale: str
    value: int
    sentiment: str
    ts: str
    reason: str | None
    comment_shown: str | None


@dataclass(frozen=True)
class AlertTimes:
    id: str
    kind: str
    site: str
    location: str | None
    state: str
    opened_at: str
    acked_at: str | None
    resolved_at: str | None


_RATING_COLS = "id, site, location, device_id, scale, value, sentiment, ts, reason, comment_shown"


def _rating(r: dict[str, Any]) -> RatingRow:
    return RatingRow(r["id"], r["site"], r["location"], r["device_id"], r["scale"], int(r["value"]), r["sentiment"],
                     r["ts"], r["reason"], r["comment_shown"])


def _counts(r: dict[str, Any]) -> Counts:
    return Counts(int(r["n"] or 0), float(r["points"] or 0.0), *(int(r[m] or 0) for m in _MEASURES[2:]))


def _where(span: Span, column: str) -> tuple[str, list[Any]]:
    """The SQL condition (and its parameters) of one span on a time column (an hour or an RFC 3339 text:
    "2026-11-24T10" sorts before every time of that hour)."""
    marks = ",".join("?" * len(span.sites))
    if span.others:
        sites = f"site NOT IN ({marks})" if span.sites else "1 = 1"
    else:
        sites = f"site IN ({marks})" if span.sites else "1 = 0"
    return f"{sites} AND {column} >= ? AND {column} < ?", [*span.sites, span.lo, span.hi]


def _any(spans: Sequence[Span], column: str, location: str | None) -> tuple[str, list[Any]]:
    """Any of the spans, with their overall bounds first (what an index on the column can use)."""
    if not spans:
        return "1 = 0", []
    parts = [_where(s, column) for s in spans]
    sql = f"{column} >= ? AND {column} < ? AND (" + " OR ".join(f"({p})" for p, _ in parts) + ")"
    params: list[Any] = [min(s.lo for s in spans), max(s.hi for s in spans)]
    params += [x for _, ps in parts for x in ps]
    if location is not None:
        sql, params = sql + " AND location = ?", [*params, location]
    return sql, params


class DashboardStore:
    """``DashboardStore(store)``: the rollups, their refresh and the dashboards' reads."""

    def __init__(self, store: CentralStore) -> None:
        self.store = store
        self.db = store.db

    # --- freshness -----------------------------------------------------------------------------
    def mark_all(self, at: str) -> int:
        """Mark every (site, day) that has ratings stale (a rebuild; also what migration 009 does)."""
        with self.db.transaction():
            pairs = [(r["site"], r["day"]) for r in self.db.query(
                "SELECT site, substr(ts, 1, 10) AS day FROM ratings GROUP BY site, substr(ts, 1, 10)")]
            mark_dirty(self.db, pairs, at)
        return len(pairs)

    def dirty(self) -> int:
        """How many (site, day) pairs wait for a refresh."""
        return int(self.db.scalar("SELECT count(*) AS n FROM rollup_dirty") or 0)

    def refresh(self, *, sites: tuple[str, ...] | None = None, first: date | None = None,
                last: date | None = None) -> int:
        """Recompute the stale UTC days ``[first, last]`` (all, when not given) of ``sites`` (None: every site);
        the number of days recomputed."""
        sql, params = "SELECT site, day FROM rollup_dirty WHERE 1 = 1", list[Any]()
        if first is not None:
            sql, params = sql + " AND day >= ?", [*params, first.isoformat()]
        if last is not None:
            sql, params = sql + " AND day <= ?", [*params, last.isoformat()]
        if sites is not None:
            if not sites:
                return 0
            sql, params = sql + f" AND site IN ({','.join('?' * len(sites))})", [*params, *sites]
        done = 0
        for site, lo, hi in _runs([(r["site"], r["day"]) for r in self.db.query(sql + " ORDER BY site, day", params)]):
            done += self._refresh_run(site, lo, hi)
        return done

    def _refresh_run(self, site: str, lo: str, hi: str) -> int:
        """Recompute the days ``[lo, hi]`` of one site in one transaction; clear the marks still as read."""
        db = self.db
        with db.transaction():
            if db.dialect == "postgresql":
                db.query("SELECT pg_advisory_xact_lock(?, ?)", (LOCK_KEY, zlib.crc32(site.encode()) - 2**31))
            marks = db.query("SELECT day, gen FROM rollup_dirty WHERE site = ? AND day >= ? AND day <= ?",
                             (site, lo, hi))
            if not marks:
                return 0  # another refresher did them meanwhile
            lo, hi = min(m["day"] for m in marks), max(m["day"] for m in marks)
            end = (date.fromisoformat(hi) + timedelta(days=1)).isoformat()
            for table, insert in (("rollup_hours", _REFRESH_HOURS), ("rollup_reasons", _REFRESH_REASONS)):
                db.execute(f"DELETE FROM {table} WHERE site = ? AND hour >= ? AND hour < ?", (site, lo, end))
                db.execute(insert, (site, lo, end))
            db.executemany("DELETE FROM rollup_dirty WHERE site = ? AND day = ? AND gen = ?",
                           [(site, m["day"], m["gen"]) for m in marks])
        return len(marks)

    # --- aggregates ----------------------------------------------------------------------------
    def hours(self, spans: Sequence[Span], location: str | None = None) -> list[HourCounts]:
        """The counts per UTC hour of each span (all its sites and locations together)."""
        out: list[HourCounts] = []
        for i, span in enumerate(spans):
            where, params = _where(span, "hour")
            if location is not None:
                where, params = where + " AND location = ?", [*params, location]
            for r in self.db.query(f"SELECT hour, {_SUMS} FROM rollup_hours WHERE {where} GROUP BY hour", params):
                out.append(HourCounts(i, r["hour"], _counts(r)))
        return out

    def reasons(self, spans: Sequence[Span], location: str | None = None) -> list[ReasonHour]:
        """Ratings with a reason per UTC hour and reason, of each span."""
        out: list[ReasonHour] = []
        for i, span in enumerate(spans):
            where, params = _where(span, "hour")
            if location is not None:
                where, params = where + " AND location = ?", [*params, location]
            for r in self.db.query("SELECT hour, reason, sum(n) AS n, sum(negative) AS negative FROM rollup_reasons "
                                   f"WHERE {where} GROUP BY hour, reason", params):
                out.append(ReasonHour(i, r["hour"], r["reason"], int(r["n"]), int(r["negative"])))
        return out

    def places(self, current: Sequence[Span], previous: Sequence[Span],
               location: str | None = None) -> list[PlaceCounts]:
        """Counts per (site, location) in the current spans and in the previous ones; sorted by site, location."""
        found: dict[tuple[str, str], dict[str, Counts]] = {}
        for key, spans in (("current", current), ("previous", previous)):
            where, params = _any(spans, "hour", location)
            for r in self.db.query(f"SELECT site, location, {_SUMS} FROM rollup_hours WHERE {where} "
                                   "GROUP BY site, location", params):
                found.setdefault((r["site"], r["location"]), {})[key] = _counts(r)
        return [PlaceCounts(site, loc, **c) for (site, loc), c in sorted(found.items())]

    # --- raw reads -----------------------------------------------------------------------------
    def comments(self, spans: Sequence[Span], location: str | None = None, limit: int = 20) -> list[RatingRow]:
        """The latest visitors' ratings with a comment (the masked one), newest first."""
        where, params = _any(spans, "ts", location)
        rows = self.db.query(f"SELECT {_RATING_COLS} FROM ratings WHERE comment_shown IS NOT NULL AND {where} "
                             f"AND comment_shown <> '' AND {NOT_REPEAT} ORDER BY ts DESC, id DESC LIMIT ?",
                             [*params, limit])
        return [_rating(r) for r in rows]

    def alerts(self, spans: Sequence[Span], location: str | None = None, limit: int = 10_000) -> list[AlertTimes]:
        """Alerts opened or resolved in the spans: only those people act on (grouped ones and kudos left out)."""
        opened, p1 = _any(spans, "opened_at", location)
        resolved, p2 = _any(spans, "resolved_at", location)
        rows = self.db.query("SELECT id, kind, site, location, state, opened_at, acked_at, resolved_at FROM alerts "
                             f"WHERE parent_id IS NULL AND severity <> 'kudos' AND (({opened}) OR ({resolved})) "
                             "ORDER BY opened_at, id LIMIT ?", [*p1, *p2, limit])
        return [AlertTimes(r["id"], r["kind"], r["site"], r["location"], r["state"], r["opened_at"], r["acked_at"],
                           r["resolved_at"]) for r in rows]

    def sites_with_ratings(self, span: Span) -> list[str]:
        """The sites of a span that have visitors' ratings in it (from the rollups: refresh first)."""
        where, params = _where(span, "hour")
        return [r["site"] for r in self.db.query(f"SELECT DISTINCT site FROM rollup_hours WHERE {where} "
                                                 "ORDER BY site", params)]

    def ratings(self, site: str, lo: str, hi: str, location: str | None = None,
                page: int = 1000) -> Iterator[RatingRow]:
        """The visitors' ratings of one site made in ``[lo, hi)``, oldest first, read ``page`` at a time (each page
        its own short query: a slow reader holds no transaction open)."""
        sql = f"SELECT {_RATING_COLS} FROM ratings WHERE site = ? AND ts >= ? AND ts < ? AND {NOT_REPEAT}"
        params: list[Any] = [site, lo, hi]
        if location is not None:
            sql, params = sql + " AND location = ?", [*params, location]
        after: tuple[str, str] | None = None
        while True:
            keyset = " AND (ts > ? OR (ts = ? AND id > ?))" if after else ""
            more = [after[0], after[0], after[1]] if after else []
            rows = self.db.query(f"{sql}{keyset} ORDER BY ts, id LIMIT ?", [*params, *more, page])
            yield from (_rating(r) for r in rows)
            if len(rows) < page:
                return
            after = (rows[-1]["ts"], rows[-1]["id"])


def _runs(pairs: list[tuple[str, str]]) -> Iterator[tuple[str, str, str]]:
    """(site, first day, last day) of each run of consecutive days (at most :data:`RUN_DAYS`) of each site;
    ``pairs`` sorted by site and day."""
    site, run = "", list[date]()
    for s, text in pairs:
        day = date.fromisoformat(text)
        if run and (s != site or len(run) >= RUN_DAYS or day - run[-1] != timedelta(days=1)):
            yield site, run[0].isoformat(), run[-1].isoformat()
            run = []
        site = s
        run.append(day)
    if run:
        yield site, run[0].isoformat(), run[-1].isoformat()
