"""The JSON API over ratings and aggregates, limited to the caller's sites like everything else: the
dashboard's figures (``/api/aggregates``), the ratings behind them (``/api/ratings``, paginated) and their
CSV (``/api/ratings.csv``, streamed). Dates are local days of the chosen site (UTC for all sites)."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from central.console.api import ERRORS
from central.console.deps import Console, console, who
from central.dashboard import Range, dashboard
from central.dashboard_export import rating_rows, ratings_csv

router = APIRouter(prefix="/api", tags=["ratings"])

Site = Annotated[str | None, Query(max_length=64)]
Day = Annotated[str | None, Query(max_length=10, description="YYYY-MM-DD")]


class RatingPage(BaseModel):
    items: list[dict[str, Any]]
    limit: int
    offset: int
    next_offset: int | None


def today(c: Console, site: str | None) -> datetime:
    return c.clock.now().astimezone(ZoneInfo(c.timezone(site)))


def date_range(c: Console, site: str | None, start: str | None, end: str | None, default_days: int = 30) -> Range:
    return Range.parse(start, end, today=today(c, site).date(), default_days=default_days)


@router.get("/aggregates", responses=ERRORS)
def aggregates(request: Request, site: Site = None, location: Site = None,
               start: Annotated[str | None, Query(alias="from", max_length=10, description="YYYY-MM-DD")] = None,
               end: Annotated[str | None, Query(alias="to", max_length=10, description="YYYY-MM-DD")] = None
               ) -> dict[str, Any]:
    """Everything a dashboard shows: totals with the previous period, index/NPS/CSAT per day, the hour × weekday
    heatmap, reasons and their trend, the ranking of locations, comments, alerts against SLA."""
    asking, c = who(request), console(request)
    rng = date_range(c, site, start, end)
    d = dashboard(c.store, c.org(), start=rng.start, end=rng.end, sites=asking.user.scope(), site=site or None,
                  location=location or None, now=c.clock.now())
    return d.as_dict()


@router.get("/ratings", response_model=RatingPage, responses=ERRORS)
def ratings(request: Request, site: Site = None, location: Site = None,
            start: Annotated[str | None, Query(alias="from", max_length=10, description="YYYY-MM-DD")] = None,
            end: Annotated[str | None, Query(alias="to", max_length=10, description="YYYY-MM-DD")] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100,
            offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> RatingPage:
    """Visitors' ratings (test taps and repeats left out; never a contact or the comment as typed), by site and
    time."""
    asking, c = who(request), console(request)
    rng = date_range(c, site, start, end)
    rows = rating_rows(c.store, c.org(), start=rng.start, end=rng.end, sites=asking.user.scope(),
                       site=site or None, location=location or None)
    page = list(itertools.islice(rows, offset, offset + limit + 1))
    return RatingPage(items=page[:limit], limit=limit, offset=offset,
                      next_offset=offset + limit if len(page) > limit else None)


@router.get("/ratings.csv", responses={**ERRORS, 200: {"content": {"text/csv": {}}, "description": "CSV"}})
def ratings_export(request: Request, site: Site = None, location: Site = None,
                   start: Annotated[str | None, Query(alias="from", max_length=10, description="YYYY-MM-DD")] = None,
                   end: Annotated[str | None, Query(alias="to", max_length=10, description="YYYY-MM-DD")] = None
                   ) -> StreamingResponse:
    """The same ratings as CSV, streamed (a spreadsheet formula in a comment is neutralised)."""
    asking, c = who(request), console(request)
    rng = date_range(c, site, start, end)
    lines = ratings_csv(c.store, c.org(), start=rng.start, end=rng.end, sites=asking.user.scope(),
                        site=site or None, location=location or None)
    name = f"ratings-{site or 'all'}-{rng.start}-{rng.end}.csv"
    return StreamingResponse(lines, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})
