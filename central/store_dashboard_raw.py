"""The raw reads of the console's dashboards, beside the rollups of :mod:`central.store_dashboard`: the latest
comments, the alerts of a range, the sites with ratings, and the ratings themselves for an export.

A range of local days becomes one :class:`Span` per time zone: its sites and the exact UTC instants
``[lo, hi)`` of its days, compared with the stored RFC 3339 texts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from central.store_reads import NOT_REPEAT

if TYPE_CHECKING:
    from central.db import Database


@dataclass(frozen=True)
class Span:
    """Sites that share a time zone and the UTC instants ``[lo, hi)`` (RFC 3339 texts) of a range of their
    local days."""

    sites: tuple[str, ...]
    lo: str
    hi: str


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


def _any(spans: Sequence[Span], column: str, location: str | None) -> tuple[str, list[Any]]:
    """Any of the spans on a time column, with their overall bounds first (what an index on it can use)."""
    if not spans:
        return "1 = 0", []
    parts, params = [], [min(s.lo for s in spans), max(s.hi for s in spans)]
    for s in spans:
        sites = f"site IN ({','.join('?' * len(s.sites))})" if s.sites else "1 = 0"
        parts.append(f"({sites} AND {column} >= ? AND {column} < ?)")
        params += [*s.sites, s.lo, s.hi]
    sql = f"{column} >= ? AND {column} < ? AND ({' OR '.join(parts)})"
    if location is not None:
        sql, params = sql + " AND location = ?", [*params, location]
    return sql, params


class RawReads:
    """Mixed into :class:`central.store_dashboard.DashboardStore`; needs its ``db``."""

    db: Database

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

    def sites(self) -> list[str]:
        """Every site with visitors' ratings in the rollups (refresh first), with one index probe per site."""
        rows = self.db.query(
            "WITH RECURSIVE s(site) AS (SELECT min(site) FROM rollup_days UNION ALL "
            "SELECT (SELECT min(site) FROM rollup_days WHERE site > s.site) FROM s WHERE s.site IS NOT NULL) "
            "SELECT site FROM s WHERE site IS NOT NULL")
        return [str(r["site"]) for r in rows]

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
