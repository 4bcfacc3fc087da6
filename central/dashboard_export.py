"""CSV of what a dashboard shows, and the visitors' ratings behind it.

:func:`csv_sections` is built from :meth:`central.dashboard.Dashboard.as_dict`, so a section's CSV holds exactly
the values its page and its JSON show (None as an empty cell). :func:`ratings_csv` streams the ratings of a
dashboard's scope and range, page by page: id, site, location, device, scale, value, sentiment, local time,
reason and the masked comment — never a contact, never the comment as typed; test taps and repeats left out,
as from every figure. A text cell that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``) gets a
leading ``'``.

Example::

    d = dashboard(store, org, start=start, end=end, sites=None, now=now)
    text = csv_text(d, "ranking")
    for line in ratings_csv(store, org, start=start, end=end, sites=("store-1",)):
        out.write(line)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import chain
from typing import Any
from zoneinfo import ZoneInfo

from central.dashboard import WEEKDAYS, Dashboard, Range, Scope, refresh, spans
from central.errors import DashboardError
from central.org import Org
from central.store import CentralStore
from central.store_dashboard import DashboardStore, Span
from smileloop_core.clock import parse_utc

FIGURES = ("n", "index", "nps", "csat", "negative_share")
RANKING = ("site", "location", "n", "index", "negative_share", "previous_n", "previous_index",
           "previous_negative_share", "index_change", "negative_share_change")
COMMENT = ("time", "site", "location", "scale", "value", "sentiment", "reason", "comment_shown", "id")
RATING = ("id", "site", "location", "device", "scale", "value", "sentiment", "local_time", "reason", "comment_shown")
SECTIONS = ("totals", "series", "heatmap", "reasons", "reason_trend", "ranking", "comments", "alerts",
            "alert_summary")


@dataclass(frozen=True)
class Section:
    """One table of a dashboard: its name, header and rows (cells as shown: None for empty)."""

    name: str
    header: list[str]
    rows: list[list[Any]]


def csv_sections(d: Dashboard | dict[str, Any]) -> list[Section]:
    """Every table the dashboard shows, in :data:`SECTIONS` order."""
    v = d.as_dict() if isinstance(d, Dashboard) else d
    t = v["totals"]
    reasons = [r["reason"] for r in v["reasons"]]
    days = [s["day"] for s in v["series"]]
    a = v["alerts"]
    summary = ("opened", "resolved", "still_open", "with_sla", "within_sla", "within_sla_share",
               "median_resolve_hours", "p90_resolve_hours")
    return [
        Section("totals", ["figure", "value", "previous", "change"],
                [[k, t[k], t[f"previous_{k}"], t[f"{k}_change"]] for k in FIGURES]),
        Section("series", ["day", *FIGURES], [[s["day"], *(s[k] for k in FIGURES)] for s in v["series"]]),
        Section("heatmap", ["weekday", *(str(h) for h in range(24))],
                [[day, *cells] for day, cells in zip(WEEKDAYS, v["heatmap"]["cells"], strict=True)]),
        Section("reasons", ["reason", "n", "negative", "share"],
                [[r["reason"], r["n"], r["negative"], r["share"]] for r in v["reasons"]]),
        Section("reason_trend", ["day", *reasons],
                [[day, *(r["trend"][i] for r in v["reasons"])] for i, day in enumerate(days)]),
        Section("ranking", list(RANKING), [[r[k] for k in RANKING] for r in v["ranking"]]),
        Section("comments", list(COMMENT), [[c[k] for k in COMMENT] for c in v["comments"]]),
        Section("alerts", ["day", "opened", "resolved"], [[x["day"], x["opened"], x["resolved"]] for x in a["days"]]),
        Section("alert_summary", ["figure", "value"], [[k, a[k]] for k in summary]),
    ]


def csv_text(d: Dashboard | dict[str, Any], section: str | None = None) -> str:
    """One section as CSV, or (None) every section, each after a ``# name`` line and a blank line between."""
    found = csv_sections(d)
    if section is not None:
        chosen = [s for s in found if s.name == section]
        if not chosen:
            raise DashboardError(f"no CSV section {section!r}; one of {', '.join(SECTIONS)}")
        return _csv([chosen[0].header, *chosen[0].rows])
    return "\n".join(f"# {s.name}\r\n" + _csv([s.header, *s.rows]) for s in found)


def ratings_csv(store: CentralStore, org: Org, *, start: date, end: date, sites: tuple[str, ...] | None,
                site: str | None = None, location: str | None = None, page: int = 1000) -> Iterator[str]:
    """The header, then one CSV line per visitor's rating of the scope and range (columns :data:`RATING`), by
    site, then time; read ``page`` ratings at a time. Errors as :func:`central.dashboard.dashboard`'s, raised
    before the first line."""
    rows = rating_rows(store, org, start=start, end=end, sites=sites, site=site, location=location, page=page)
    return chain([_csv([list(RATING)])], (_csv([[row[k] for k in RATING]]) for row in rows))


def rating_rows(store: CentralStore, org: Org, *, start: date, end: date, sites: tuple[str, ...] | None,
                site: str | None = None, location: str | None = None, page: int = 1000) -> Iterator[dict[str, Any]]:
    """The same ratings as :func:`ratings_csv`, as dicts with the keys :data:`RATING` (for the JSON API)."""
    rng = Range(start, end).check()
    scope = Scope(tuple(sorted(set(sites))) if sites is not None else None, site, location)
    reads = DashboardStore(store)
    refresh(reads, org, scope, rng)
    current, zones = spans(org, scope, rng, reads.sites() if scope.sites is None else ())
    return _rows(reads, current, zones, location, page)


def _rows(reads: DashboardStore, current: Sequence[Span], zones: Sequence[ZoneInfo], location: str | None,
          page: int) -> Iterator[dict[str, Any]]:
    for span, tz in zip(current, zones, strict=True):
        for name in span.sites:
            for r in reads.ratings(name, span.lo, span.hi, location, page=page):
                local = parse_utc(r.ts).astimezone(tz).isoformat(timespec="milliseconds")
                yield dict(zip(RATING, (r.id, r.site, r.location, r.device_id, r.scale, r.value, r.sentiment, local,
                                        r.reason, r.comment_shown), strict=True))


def _csv(rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    for row in rows:
        w.writerow([_cell(x) for x in row])
    return out.getvalue()


def _cell(x: Any) -> Any:
    if x is None:
        return ""
    if isinstance(x, str) and x[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + x
    return x
