"""The console's dashboards: figures for all sites, a site or a location over a range of days, read from the
hourly rollups of :mod:`central.store_dashboard` (refreshed first), so a 90-day dashboard over a million ratings
answers in milliseconds (docs/BENCHMARKS.md, "Console dashboards").

Definitions (every figure counts visitors only: test taps and repeat presses are left out):

- **satisfaction index** 0–100: the mean of every rating's value mapped linearly onto 0–100 on its scale,
  ``(value - low) / (high - low) * 100`` (smiley4 1→0, 2→33.3, 3→66.7, 4→100; nps 0–10 → 0–100);
- **NPS** −100…100: % promoters (9–10) − % detractors (0–6) of the ratings on the ``nps`` scale;
- **CSAT** 0–100: % of the ratings on ``csat5`` that are 4 or 5 (top-two-box);
- **negative share** 0–100: % of ratings whose sentiment is negative (each scale's bands, smileloop_core.scales);
- a figure with no rating behind it is None (shown empty), never 0.

Days and hours are the site's local ones (its ``timezone`` in the org document; UTC for a site the document
does not describe), cut at the site's exact local midnight: zones with half-hour offsets and the days the
clocks change are counted exactly (the rollups are kept per local day, :mod:`central.store_dashboard`). A range
of days is ``[start, end]`` inclusive, at most :data:`MAX_DAYS`; the previous period is the same number of days
just before it. With several sites in different zones, each site's own days are used. The heatmap counts
ratings per local weekday and hour.

Alerts: those people act on (grouped alerts and kudos left out), opened and resolved per local day; the time
to resolve counts opening hours (as the SLA clocks of :mod:`central.sla` do): an alert resolved in the range
is within its SLA if it was acknowledged within its rule's ``ack_sla`` and resolved within ``resolve_sla``
after that (0 = no SLA; an alert resolved without an acknowledgement: the whole time against ``ack_sla``).

Example::

    d = dashboard(store, org, start=date(2026, 11, 1), end=date(2026, 11, 30), sites=("store-1",),
                  now=clock.now())
    d.as_dict()["totals"]["index"]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from central.errors import AccessDenied, DashboardError
from central.org import Org
from central.rulebook import RULES, RuleBook
from central.store import CentralStore
from central.store_dashboard import AlertTimes, Counts, DashboardStore, Slice, Span, local_midnight
from smileloop_core.clock import parse_utc, utc_iso
from smileloop_core.hours import open_seconds_between
from smileloop_core.ids import is_id

MAX_DAYS = 400
COMMENTS = 20
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Range:
    """Local days ``[start, end]``, both included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if not isinstance(self.start, date) or not isinstance(self.end, date):
            raise DashboardError("start and end must be dates")
        if self.end < self.start:
            raise DashboardError(f"the range ends ({self.end}) before it starts ({self.start})")
        if self.days > MAX_DAYS:
            raise DashboardError(f"the range has {self.days} days; at most {MAX_DAYS}")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def previous(self) -> Range:
        """The same number of days just before."""
        return Range(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    def check(self) -> Range:
        """Itself, if its days lie in the years 1900–9000 (what a dashboard may ask for)."""
        if self.start.year < 1900 or self.end.year > 9000:
            raise DashboardError("dates must lie between the years 1900 and 9000")
        return self

    @classmethod
    def parse(cls, start: str | None, end: str | None, *, today: date, default_days: int = 30) -> Range:
        """From ``YYYY-MM-DD`` texts (a query string); a missing end is ``today``, a missing start
        ``default_days`` before the end."""
        last = _date(end, "end") if end else today
        first = _date(start, "start") if start else last - timedelta(days=default_days - 1)
        return cls(first, last).check()


def _date(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except (ValueError, TypeError, AttributeError):
        raise DashboardError(f"{name}: {text!r} is not a date (YYYY-MM-DD)") from None


@dataclass(frozen=True)
class Scope:
    """What one dashboard covers: ``site`` and ``location`` (None: all), within the ``sites`` its viewer may see
    (None: every site)."""

    sites: tuple[str, ...] | None = None
    site: str | None = None
    location: str | None = None

    def __post_init__(self) -> None:
        for name, value in (("site", self.site), ("location", self.location)):
            if value is not None and not is_id(value):
                raise DashboardError(f"{name}: {value!r} is not an identifier")
        if self.location is not None and self.site is None:
            raise DashboardError("a location needs its site")
        if self.sites is not None and self.site is not None and self.site not in self.sites:
            raise AccessDenied(f"site {self.site!r} is not among the sites you may see")

    def as_dict(self) -> dict[str, Any]:
        return {"sites": None if self.sites is None else sorted(self.sites), "site": self.site,
                "location": self.location}


def figures(c: Counts) -> dict[str, float | int | None]:
    """n, index, NPS, CSAT and negative share (module docstring) of some counts, one decimal."""
    return {"n": c.n, "index": _r(c.points / c.n) if c.n else None,
            "nps": _r(100 * (c.promoters - c.detractors) / c.nps_n) if c.nps_n else None,
            "csat": _r(100 * c.csat_top / c.csat_n) if c.csat_n else None,
            "negative_share": _r(100 * c.negative / c.n) if c.n else None}


def _r(x: float) -> float:
    return round(x + 0.0, 1) + 0.0  # no -0.0


def _change(now: float | int | None, before: float | int | None) -> float | None:
    return _r(now - before) if now is not None and before is not None else None


@dataclass(frozen=True)
class Dashboard:
    """Everything a dashboard page shows; :meth:`as_dict` is its JSON (and its CSV, central.dashboard_export)."""

    scope: Scope
    range: Range
    generated_at: datetime
    timezones: dict[str, str]  # site → its zone, for the sites in view
    totals: Counts
    previous: Counts
    series: list[tuple[date, Counts]]
    heatmap: list[list[int]]  # [weekday mon..sun][local hour 0..23] → ratings
    reasons: list[tuple[str, int, int, list[int]]]  # (reason, n, negatives, n per day)
    ranking: list[tuple[str, str, Counts, Counts]]  # (site, location, current, previous)
    comments: list[dict[str, Any]]
    alerts: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        now, before = figures(self.totals), figures(self.previous)
        reasons_total = sum(n for _, n, _, _ in self.reasons)
        ranking = []
        for site, location, cur, prev in self.ranking:
            f, p = figures(cur), figures(prev)
            ranking.append({"site": site, "location": location, "n": f["n"], "index": f["index"],
                            "negative_share": f["negative_share"], "previous_n": p["n"], "previous_index": p["index"],
                            "previous_negative_share": p["negative_share"],
                            "index_change": _change(f["index"], p["index"]),
                            "negative_share_change": _change(f["negative_share"], p["negative_share"])})
        return {
            "scope": self.scope.as_dict(), "generated_at": self.generated_at.astimezone(UTC).isoformat(),
            "range": {"start": self.range.start.isoformat(), "end": self.range.end.isoformat(),
                      "days": self.range.days, "previous_start": self.range.previous.start.isoformat(),
                      "previous_end": self.range.previous.end.isoformat()},
            "timezones": dict(sorted(self.timezones.items())),
            "totals": {**now, **{f"previous_{k}": v for k, v in before.items()},
                       **{f"{k}_change": _change(now[k], before[k]) for k in now}},
            "series": [{"day": day.isoformat(), **figures(c)} for day, c in self.series],
            "heatmap": {"weekdays": list(WEEKDAYS), "hours": list(range(24)), "cells": self.heatmap},
            "reasons": [{"reason": reason, "n": n, "negative": neg,
                         "share": _r(100 * n / reasons_total) if reasons_total else None, "trend": trend}
                        for reason, n, neg, trend in self.reasons],
            "ranking": ranking, "comments": self.comments, "alerts": self.alerts,
        }


def dashboard(store: CentralStore, org: Org, *, start: date, end: date, sites: tuple[str, ...] | None,
              site: str | None = None, location: str | None = None, now: datetime,
              book: RuleBook | None = None, comments: int = COMMENTS) -> Dashboard:
    """The dashboard of ``site``/``location`` (None: every site in view) over local days ``[start, end]``,
    showing only ``sites`` (None: all). :class:`DashboardError` for a bad range or scope,
    :class:`AccessDenied` for a site outside ``sites``. ``book``: the rules' SLAs (default: the store's)."""
    rng, scope = Range(start, end).check(), Scope(_sites(sites), site, location)
    reads = DashboardStore(store)
    refresh(reads, org, scope, Range(rng.previous.start, rng.end))
    rows = Slice((site,) if site else scope.sites, rng.start, rng.end, location)
    index = {d.isoformat(): i for i, d in enumerate(rng.dates())}
    series = [Counts()] * rng.days
    for day, counts in reads.days(rows):
        if (i := index.get(day)) is not None:
            series[i] = counts
    heatmap = [[0] * 24 for _ in WEEKDAYS]
    for day, hour, n in reads.hours(rows):
        heatmap[_weekday(day)][hour] += n
    by_reason: dict[str, list[int]] = defaultdict(lambda: [0, 0, *[0] * rng.days])
    for day, reason, n, negative in reads.reasons(rows):
        if (i := index.get(day)) is not None:
            row = by_reason[reason]
            row[0], row[1], row[2 + i] = row[0] + n, row[1] + negative, row[2 + i] + n
    reasons = sorted(((k, v[0], v[1], v[2:]) for k, v in by_reason.items()), key=lambda x: (-x[1], x[0]))
    places = reads.places(rows, replace(rows, first=rng.previous.start, last=rng.previous.end))
    ranking = sorted(((p.site, p.location, p.current, p.previous) for p in places),
                     key=lambda x: (x[2].n == 0, -(x[2].points / x[2].n if x[2].n else 0), -x[2].n, x[0], x[1]))
    totals, before = Counts(), Counts()
    for p in places:
        totals, before = totals + p.current, before + p.previous
    current, _ = spans(org, scope, rng, reads.sites() if scope.sites is None else ())
    site_zones = _site_zones(org, scope, [p.site for p in places])
    shown = [{"id": c.id, "site": c.site, "location": c.location, "time": _at(c.ts, site_zones, org, c.site),
              "scale": c.scale, "value": c.value, "sentiment": c.sentiment, "reason": c.reason,
              "comment_shown": c.comment_shown} for c in reads.comments(current, location, comments)]
    book = book if book is not None else RuleBook(store.document("rules")[0])
    alerts = _alerts(reads.alerts(current, location), org, book, rng, now)
    return Dashboard(scope, rng, now, site_zones, totals, before, list(zip(rng.dates(), series, strict=True)),
                     heatmap, reasons, ranking, shown, alerts)


def refresh(reads: DashboardStore, org: Org, scope: Scope, rng: Range) -> int:
    """Bring the rollups of the scope's sites up to date over the UTC days of ``rng``'s local days in any zone
    (a day either side)."""
    return reads.refresh(lambda s: org.site(s).hours.timezone, sites=(scope.site,) if scope.site else scope.sites,
                         first=rng.start - timedelta(days=1), last=rng.end + timedelta(days=1))


def _sites(sites: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if sites is None:
        return None
    if isinstance(sites, str) or not all(isinstance(s, str) for s in sites):
        raise DashboardError("sites: a tuple of site ids, or None for all")
    return tuple(sorted(set(sites)))


def spans(org: Org, scope: Scope, rng: Range, known: Sequence[str] = ()) -> tuple[list[Span], list[ZoneInfo]]:
    """The sites of ``scope`` grouped by time zone, each group with the UTC instants of ``rng``'s local days; with
    every site in view, those of the org and ``known`` (sites with ratings the org does not describe: UTC)."""
    if scope.site is not None:
        names: set[str] = {scope.site}
    else:
        names = set(scope.sites) if scope.sites is not None else {*org.sites, *known}
    groups: dict[str, list[str]] = defaultdict(list)
    for s in sorted(names):
        groups[org.site(s).hours.timezone].append(s)
    ordered = sorted(groups.items())
    return [_span(tuple(s), ZoneInfo(tz), rng) for tz, s in ordered], [ZoneInfo(tz) for tz, _ in ordered]


def _span(sites: tuple[str, ...], tz: ZoneInfo, rng: Range) -> Span:
    """The exact UTC instants from local midnight of the first day to that of the day after the last."""
    return Span(sites, utc_iso(local_midnight(rng.start, tz)), utc_iso(local_midnight(rng.end + timedelta(days=1), tz)))


@lru_cache(maxsize=4096)
def _weekday(day: str) -> int:
    return date.fromisoformat(day).weekday()


def _site_zones(org: Org, scope: Scope, seen: Sequence[str]) -> dict[str, str]:
    names = {scope.site} if scope.site else set(scope.sites if scope.sites is not None else org.sites)
    return {s: org.site(s).hours.timezone for s in names | set(seen)}


def _at(ts: str | None, zones: dict[str, str], org: Org, site: str) -> str | None:
    """A stored UTC time as the site's local time (RFC 3339 with its offset, to the second)."""
    if not ts:
        return None
    tz = zones.get(site) or org.site(site).hours.timezone
    return parse_utc(ts).astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")


def _alerts(rows: list[AlertTimes], org: Org, book: RuleBook, rng: Range, now: datetime) -> dict[str, Any]:
    """Opened and resolved per local day; time to resolve (opening hours) against the SLA."""
    index = {d: i for i, d in enumerate(rng.dates())}
    opened, resolved = [0] * rng.days, [0] * rng.days
    waits: list[float] = []
    with_sla = within = still_open = 0
    for a in rows:
        hours = org.hours(a.site)
        tz = ZoneInfo(hours.timezone)
        at = parse_utc(a.opened_at)
        i = index.get(at.astimezone(tz).date())
        if i is not None:
            opened[i] += 1
            still_open += a.resolved_at is None or parse_utc(a.resolved_at) > now
        done = parse_utc(a.resolved_at) if a.resolved_at else None
        j = index.get(done.astimezone(tz).date()) if done else None
        if done is None or j is None:
            continue
        resolved[j] += 1
        acked = min(max(parse_utc(a.acked_at), at), done) if a.acked_at else done
        ack_wait, fix_wait = open_seconds_between(hours, at, acked), open_seconds_between(hours, acked, done)
        waits.append(ack_wait + fix_wait)
        if a.kind in RULES:
            p = book.params(a.kind, a.site, a.location)
            if p["ack_sla"] > 0 or p["resolve_sla"] > 0:
                with_sla += 1
                within += (p["ack_sla"] <= 0 or ack_wait <= p["ack_sla"]) and (
                    p["resolve_sla"] <= 0 or fix_wait <= p["resolve_sla"])
    waits.sort()
    return {"days": [{"day": d.isoformat(), "opened": o, "resolved": r}
                     for d, o, r in zip(rng.dates(), opened, resolved, strict=True)],
            "opened": sum(opened), "resolved": sum(resolved), "still_open": still_open, "with_sla": with_sla,
            "within_sla": within, "within_sla_share": _r(100 * within / with_sla) if with_sla else None,
            "median_resolve_hours": _r(_pct(waits, 50) / 3600) if waits else None,
            "p90_resolve_hours": _r(_pct(waits, 90) / 3600) if waits else None}


def _pct(xs: list[float], q: float) -> float:
    """The ``q``-th percentile of sorted values (nearest rank)."""
    rank = int(-(-len(xs) * q // 100))  # ceil
    return xs[max(0, min(len(xs) - 1, rank - 1))] if xs else 0.0
