"""The dashboard page: figures, charts and tables for all sites, a site or a location over a range of days, and
the CSV of exactly what it shows (``/dashboard.csv?section=…``). The figures come from :mod:`central.dashboard`;
the charts are Chart.js configurations the page's script draws (no inline script: the CSP forbids it)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from central.console.api_data import date_range
from central.console.deps import console, render, who
from central.dashboard import dashboard
from central.dashboard_export import SECTIONS, csv_sections, csv_text

router = APIRouter(include_in_schema=False)
COLOURS = ("#0b6bcb", "#c0362c", "#1b7f46", "#b26b00", "#7b3fa0", "#00838f", "#5d4037", "#546e7a")


@router.get("/dashboard")
def dashboard_page(request: Request, site: str = "", location: str = "", start: str = "", end: str = "") -> Response:
    asking, c = who(request), console(request)
    rng = date_range(c, site or None, start or None, end or None)
    d = dashboard(c.store, c.org(), start=rng.start, end=rng.end, sites=asking.user.scope(), site=site or None,
                  location=location or None, now=c.clock.now())
    v = d.as_dict()
    org = c.org()
    sites = [s for s in sorted(org.sites) if asking.user.sees(s)]
    locations = sorted(org.site(site).locations) if site else []
    query = urlencode({"site": site, "location": location, "start": rng.start.isoformat(), "end": rng.end.isoformat()})
    api_query = urlencode({"site": site, "location": location, "from": rng.start.isoformat(),
                           "to": rng.end.isoformat()})
    t = v["totals"]
    return render(request, "dashboard.html", nav="dashboard", v=v, sites=sites, locations=locations, site=site,
                  location=location, start=rng.start.isoformat(), end=rng.end.isoformat(), query=query,
                  api_query=api_query, sections=SECTIONS, heat=_heat(v["heatmap"]["cells"]),
                  charts=_charts(v), has_nps=t["nps"] is not None, has_csat=t["csat"] is not None,
                  tables={s.name: s for s in csv_sections(v)})


@router.get("/dashboard.csv")
def dashboard_csv(request: Request, section: str = "", site: str = "", location: str = "", start: str = "",
                  end: str = "") -> Response:
    """One section of the dashboard (or all, each after a ``# name`` line) as CSV: the same values as the page."""
    asking, c = who(request), console(request)
    rng = date_range(c, site or None, start or None, end or None)
    d = dashboard(c.store, c.org(), start=rng.start, end=rng.end, sites=asking.user.scope(), site=site or None,
                  location=location or None, now=c.clock.now())
    text = csv_text(d, section or None)
    name = f"dashboard-{section or 'all'}-{site or 'all'}-{rng.start}-{rng.end}.csv"
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _heat(cells: list[list[int]]) -> list[list[tuple[int, int]]]:
    """Each heatmap cell with its shade 0–9 (CSS classes, since the CSP forbids inline styles)."""
    top = max((n for row in cells for n in row), default=0)
    return [[(n, 0 if not n or not top else 1 + min(8, int(8 * n / top))) for n in row] for row in cells]


def _charts(v: dict[str, Any]) -> dict[str, str]:
    """Chart.js configurations as JSON for the page's ``data-chart`` attributes."""
    days = [s["day"] for s in v["series"]]
    lines: list[dict[str, Any]] = [_line("index", [s["index"] for s in v["series"]], COLOURS[0])]
    if v["totals"]["nps"] is not None:
        lines.append(_line("NPS", [s["nps"] for s in v["series"]], COLOURS[2]))
    if v["totals"]["csat"] is not None:
        lines.append(_line("CSAT", [s["csat"] for s in v["series"]], COLOURS[3]))
    trend = {"type": "line", "data": {"labels": days, "datasets": lines},
             "options": {"animation": False, "spanGaps": True, "maintainAspectRatio": False,
                         "scales": {"y": {"suggestedMin": 0, "suggestedMax": 100}}}}
    responses = {"type": "bar", "data": {"labels": days, "datasets": [
        {"label": "responses", "data": [s["n"] for s in v["series"]], "backgroundColor": COLOURS[0], "yAxisID": "y"},
        {"label": "negative %", "data": [s["negative_share"] for s in v["series"]], "type": "line",
         "borderColor": COLOURS[1], "yAxisID": "share"}]},
        "options": {"animation": False, "maintainAspectRatio": False,
                    "scales": {"y": {"beginAtZero": True, "position": "left"},
                               "share": {"position": "right", "min": 0, "max": 100,
                                         "grid": {"drawOnChartArea": False}}}}}
    reasons = v["reasons"][:8]
    reason_trend = {"type": "line", "data": {"labels": days, "datasets": [
        {**_line(r["reason"], r["trend"], COLOURS[i % len(COLOURS)]), "tension": 0} for i, r in enumerate(reasons)]},
        "options": {"animation": False, "maintainAspectRatio": False, "scales": {"y": {"beginAtZero": True}},
                    "elements": {"line": {"tension": 0}}}}
    reason_bars = {"type": "bar", "data": {"labels": [r["reason"] for r in reasons], "datasets": [
        {"label": "n", "data": [r["n"] for r in reasons], "backgroundColor": COLOURS[0]},
        {"label": "negative", "data": [r["negative"] for r in reasons], "backgroundColor": COLOURS[1]}]},
        "options": {"animation": False, "indexAxis": "y", "maintainAspectRatio": False}}
    a = v["alerts"]["days"]
    alerts = {"type": "bar", "data": {"labels": [x["day"] for x in a], "datasets": [
        {"label": "opened", "data": [x["opened"] for x in a], "backgroundColor": COLOURS[1]},
        {"label": "resolved", "data": [x["resolved"] for x in a], "backgroundColor": COLOURS[2]}]},
        "options": {"animation": False, "maintainAspectRatio": False}}
    return {k: json.dumps(cfg) for k, cfg in (("trend", trend), ("responses", responses),
                                             ("reason_trend", reason_trend), ("reasons", reason_bars),
                                             ("alerts", alerts))}


def _line(label: str, data: list[Any], colour: str) -> dict[str, Any]:
    return {"label": label, "data": data, "borderColor": colour, "backgroundColor": colour, "tension": 0.25,
            "pointRadius": 0}
