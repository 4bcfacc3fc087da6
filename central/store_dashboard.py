"""What the console's dashboards read from central's store: rollups of the visitors' ratings per site and local
day, kept fresh by dirty marks (and, in :mod:`central.store_dashboard_raw`, the few raw reads beside them).

Rollups (schema ``009_dashboard_rollups``), each row for one site, *local* day of the site's time zone and
location: ``rollup_days`` counts the ratings with what the figures need (index points, negatives, NPS and CSAT
counts), ``rollup_hours`` per local hour (``rollup_site_hours`` the same over all locations), ``rollup_reasons``
per reason. Test taps and repeat presses are left out, as the rules' pattern reads leave them out
(:data:`central.store_reads.NOT_REPEAT`). A local day is cut at the site's exact midnight, so zones with
half-hour offsets and the days clocks change are counted exactly. ``rollup_zones`` keeps the zone each site's
rows were made with: when the org gives a site another zone, its rollups are made again.

Freshness: ingest marks each (site, UTC day) it touches in ``rollup_dirty`` (:func:`mark_dirty`, one upsert per
pair and batch, every mark one ``gen`` higher). Before a read, :meth:`DashboardStore.refresh` recomputes every
local day that overlaps a marked UTC day from the ratings themselves (index ``ratings_site_ts``), so revisions
and erasures are right by construction, and clears a mark only if its ``gen`` is still the one it read: a
rating stored while the day was being recomputed leaves its mark for the next refresh. On PostgreSQL,
refreshers of one site take turns (an advisory lock); on SQLite the write transaction does that.

Kept apart from :class:`central.store.CentralStore` (which it is handed), like :class:`central.store_fleet.PushLog`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from central.store_dashboard_raw import AlertTimes, RatingRow, RawReads, Span
from central.store_reads import NOT_REPEAT
from smileloop_core.clock import utc_iso
from smileloop_core.scales import SCALES

if TYPE_CHECKING:
    from central.db import Database
    from central.store import CentralStore

LOCK_KEY = 7243009  # PostgreSQL advisory lock class of the rollup refresh (the second key: the site)
RUN_DAYS = 31  # a refresh recomputes at most this many consecutive UTC days of a site in one transaction
ANALYZE_AFTER = 200  # days recomputed by one refresh after which the rollups' planner statistics are renewed
TABLES = ("rollup_days", "rollup_hours", "rollup_site_hours", "rollup_reasons")

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


_MEASURES = ("n", "points", "negative", "nps_n", "promoters", "detractors", "csat_n", "csat_top")
_SUMS = ", ".join(f"sum({m}) AS {m}" for m in _MEASURES)
# one local day of one site: [lo, hi) in UTC; the first parameter is the local day itself
_OF_DAY = (f"FROM ratings WHERE site = ? AND ts >= ? AND ts < ? AND scale IN ({', '.join(map(repr, SCALES))}) "
           f"AND {NOT_REPEAT}")
_NEG = "sum(CASE WHEN sentiment = 'negative' THEN 1 ELSE 0 END)"
_DAY_ROWS = (
    f"INSERT INTO rollup_days (site, day, location, {', '.join(_MEASURES)}) SELECT site, CAST(? AS TEXT), location, "
    f"count(*), sum({_points()}), {_NEG}, sum(CASE WHEN scale = 'nps' THEN 1 ELSE 0 END), "
    "sum(CASE WHEN scale = 'nps' AND value >= 9 THEN 1 ELSE 0 END), "
    "sum(CASE WHEN scale = 'nps' AND value <= 6 THEN 1 ELSE 0 END), sum(CASE WHEN scale = 'csat5' THEN 1 ELSE 0 END), "
    f"sum(CASE WHEN scale = 'csat5' AND value >= 4 THEN 1 ELSE 0 END) {_OF_DAY} GROUP BY 1, 2, 3")
# the local hour: UTC minutes of the day plus the offset (another one from the instant the clocks change)
_HOUR = ("((CAST(substr(ts, 12, 2) AS INTEGER) * 60 + CAST(substr(ts, 15, 2) AS INTEGER) + CASE WHEN ts < ? "
         "THEN CAST(? AS INTEGER) ELSE CAST(? AS INTEGER) END + 2880) % 1440) / 60")
_HOUR_ROWS = (f"INSERT INTO rollup_hours (site, day, hour, location, n) SELECT site, CAST(? AS TEXT), {_HOUR}, "
              f"location, count(*) {_OF_DAY} GROUP BY 1, 2, 3, 4")
_REASON_ROWS = (f"INSERT INTO rollup_reasons (site, day, location, reason, n, negative) SELECT site, "
                f"CAST(? AS TEXT), location, reason, count(*), {_NEG} {_OF_DAY} AND reason IS NOT NULL "
                "GROUP BY 1, 2, 3, 4")
_SITE_HOURS = ("INSERT INTO rollup_site_hours (site, day, hour, n) SELECT site, day, hour, sum(n) FROM rollup_hours "
               "WHERE site = ? AND day >= ? AND day <= ? GROUP BY site, day, hour")


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
class PlaceCounts:
    site: str
    location: str
    current: Counts = field(default_factory=Counts)
    previous: Counts = field(default_factory=Counts)


@dataclass(frozen=True)
class Slice:
    """Which rollup rows a read sums: ``sites`` (None: all), local days ``[first, last]``, one location or all."""

    sites: tuple[str, ...] | None
    first: date
    last: date
    location: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        sql, params = "day >= ? AND day <= ?", [self.first.isoformat(), self.last.isoformat()]
        if self.sites is not None:
            sql += f" AND site IN ({','.join('?' * len(self.sites))})" if self.sites else " AND 1 = 0"
            params += self.sites
        if self.location is not None:
            sql, params = sql + " AND location = ?", [*params, self.location]
        return sql, params


def _counts(r: dict[str, Any]) -> Counts:
    return Counts(int(r["n"] or 0), float(r["points"] or 0.0), *(int(r[m] or 0) for m in _MEASURES[2:]))


class DashboardStore(RawReads):
    """``DashboardStore(store)``: the rollups, their refresh and the dashboards' reads."""

    def __init__(self, store: CentralStore) -> None:
        self.store = store
        self.db = store.db

    # --- freshness -----------------------------------------------------------------------------
    def mark_all(self, at: str, site: str | None = None) -> int:
        """Mark every (site, UTC day) that has ratings stale (a rebuild; what migration 009 does), of one site or
        all."""
        sql, params = "SELECT site, substr(ts, 1, 10) AS day FROM ratings", list[Any]()
        if site is not None:
            sql, params = sql + " WHERE site = ?", [site]
        with self.db.transaction():
            pairs = [(r["site"], r["day"]) for r in self.db.query(sql + " GROUP BY site, substr(ts, 1, 10)", params)]
            mark_dirty(self.db, pairs, at)
        return len(pairs)

    def dirty(self) -> int:
        """How many (site, UTC day) pairs wait for a refresh."""
        return int(self.db.scalar("SELECT count(*) AS n FROM rollup_dirty") or 0)

    def refresh(self, zone: Callable[[str], str], *, sites: tuple[str, ...] | None = None, first: date | None = None,
                last: date | None = None) -> int:
        """Recompute the local days (in ``zone(site)``, an IANA name) of the stale UTC days ``[first, last]`` (all,
        when not given) of ``sites`` (None: every site); the number of UTC days made fresh."""
        if sites is not None and not sites:
            return 0
        known = {r["site"]: r["timezone"] for r in self.db.query("SELECT site, timezone FROM rollup_zones")}
        for site in sorted(set(known) if sites is None else set(sites) & set(known)):
            if known[site] != zone(site):
                self._rezone(site, zone(site))
        done = 0
        for site, days in self._stale(sites, first, last).items():
            tz = zone(site)
            if site not in known:
                self.db.execute("INSERT INTO rollup_zones (site, timezone) VALUES (?, ?) ON CONFLICT (site) "
                                "DO UPDATE SET timezone = excluded.timezone", (site, tz))
            for lo, hi in _runs(days):
                done += self._refresh_run(site, ZoneInfo(tz), lo, hi)
        if done >= ANALYZE_AFTER:  # a rebuild: let the planner know the rollups' new size
            for table in TABLES:
                self.db.execute(f"ANALYZE {table}")
        return done

    def _stale(self, sites: tuple[str, ...] | None, first: date | None, last: date | None) -> dict[str, list[date]]:
        sql, params = "SELECT site, day FROM rollup_dirty WHERE 1 = 1", list[Any]()
        if first is not None:
            sql, params = sql + " AND day >= ?", [*params, first.isoformat()]
        if last is not None:
            sql, params = sql + " AND day <= ?", [*params, last.isoformat()]
        if sites is not None:
            sql, params = sql + f" AND site IN ({','.join('?' * len(sites))})", [*params, *sites]
        out: dict[str, list[date]] = {}
        for r in self.db.query(sql + " ORDER BY site, day", params):
            out.setdefault(r["site"], []).append(date.fromisoformat(r["day"]))
        return out

    def _rezone(self, site: str, tz: str) -> None:
        """The org gave the site another zone: its rollups are dropped and every day of it marked stale."""
        with self.db.transaction():
            self.db.execute("UPDATE rollup_zones SET timezone = ? WHERE site = ?", (tz, site))
            for table in TABLES:
                self.db.execute(f"DELETE FROM {table} WHERE site = ?", (site,))
            self.mark_all(f"zone {tz}", site)

    def _refresh_run(self, site: str, tz: ZoneInfo, lo: date, hi: date) -> int:
        """Recompute the local days overlapping the UTC days ``[lo, hi]`` of one site in one transaction; clear
        the marks still as read."""
        db = self.db
        with db.transaction():
            if db.dialect == "postgresql":
                db.query("SELECT pg_advisory_xact_lock(?, ?)", (LOCK_KEY, zlib.crc32(site.encode()) - 2**31))
            marks = db.query("SELECT day, gen FROM rollup_dirty WHERE site = ? AND day >= ? AND day <= ?",
                             (site, lo.isoformat(), hi.isoformat()))
            if not marks:
                return 0  # another refresher did them meanwhile
            start = datetime.combine(date.fromisoformat(min(m["day"] for m in marks)), time(0), UTC)
            end = datetime.combine(date.fromisoformat(max(m["day"] for m in marks)), time(0), UTC) + timedelta(days=1)
            first, last = start.astimezone(tz).date(), (end - timedelta(microseconds=1)).astimezone(tz).date()
            for table in TABLES:
                db.execute(f"DELETE FROM {table} WHERE site = ? AND day >= ? AND day <= ?",
                           (site, first.isoformat(), last.isoformat()))
            day = first
            while day <= last:
                a, b, change, before, after = _local_day(day, tz)
                span = (site, a, b)
                db.execute(_DAY_ROWS, (day.isoformat(), *span))
                db.execute(_HOUR_ROWS, (day.isoformat(), change, before, after, *span))
                db.execute(_REASON_ROWS, (day.isoformat(), *span))
                day += timedelta(days=1)
            db.execute(_SITE_HOURS, (site, first.isoformat(), last.isoformat()))
            db.executemany("DELETE FROM rollup_dirty WHERE site = ? AND day = ? AND gen = ?",
                           [(site, m["day"], m["gen"]) for m in marks])
        return len(marks)

    # --- aggregates ----------------------------------------------------------------------------
    def days(self, scope: Slice) -> list[tuple[str, Counts]]:
        """The counts per local day (all sites and locations of the scope together)."""
        where, params = scope.where()
        rows = self.db.query(f"SELECT day, {_SUMS} FROM rollup_days WHERE {where} GROUP BY day", params)
        return [(r["day"], _counts(r)) for r in rows]

    def hours(self, scope: Slice) -> list[tuple[str, int, int]]:
        """(local day, local hour, ratings) of the scope."""
        table = "rollup_site_hours" if scope.location is None else "rollup_hours"
        where, params = scope.where()
        rows = self.db.query(f"SELECT day, hour, sum(n) AS n FROM {table} WHERE {where} GROUP BY day, hour", params)
        return [(r["day"], int(r["hour"]), int(r["n"])) for r in rows]

    def reasons(self, scope: Slice) -> list[tuple[str, str, int, int]]:
        """(local day, reason, ratings, negatives) of the ratings with a reason."""
        where, params = scope.where()
        rows = self.db.query("SELECT day, reason, sum(n) AS n, sum(negative) AS negative FROM rollup_reasons "
                             f"WHERE {where} GROUP BY day, reason", params)
        return [(r["day"], r["reason"], int(r["n"]), int(r["negative"])) for r in rows]

    def places(self, current: Slice, previous: Slice) -> list[PlaceCounts]:
        """Counts per (site, location) in the current days and in the previous ones; sorted by site, location."""
        found: dict[tuple[str, str], dict[str, Counts]] = {}
        for key, scope in (("current", current), ("previous", previous)):
            where, params = scope.where()
            for r in self.db.query(f"SELECT site, location, {_SUMS} FROM rollup_days WHERE {where} "
                                   "GROUP BY site, location", params):
                found.setdefault((r["site"], r["location"]), {})[key] = _counts(r)
        return [PlaceCounts(site, loc, **c) for (site, loc), c in sorted(found.items())]


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """When a local day starts, in UTC."""
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def _local_day(day: date, tz: ZoneInfo) -> tuple[str, str, str, int, int]:
    """A local day's UTC ``[start, end)``, the instant its offset changes (``end`` if it does not), and the offset
    in minutes before and after that instant."""
    start, end = local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz)

    def offset(at: datetime) -> int:
        delta = at.astimezone(tz).utcoffset()
        return int(delta.total_seconds() // 60) if delta is not None else 0

    before, change = offset(start), end
    if offset(end - timedelta(seconds=1)) != before:
        change = start
        while offset(change) == before:  # clocks change on a quarter hour
            change += timedelta(minutes=15)
    return utc_iso(start), utc_iso(end), utc_iso(change), before, offset(change)


def _runs(days: list[date]) -> Iterator[tuple[date, date]]:
    """(first, last) of each run of consecutive days (at most :data:`RUN_DAYS`); ``days`` sorted."""
    run: list[date] = []
    for day in days:
        if run and (len(run) >= RUN_DAYS or day - run[-1] != timedelta(days=1)):
            yield run[0], run[-1]
            run = []
        run.append(day)
    if run:
        yield run[0], run[-1]


__all__ = ["AlertTimes", "Counts", "DashboardStore", "PlaceCounts", "RatingRow", "Slice", "Span", "mark_dirty"]
