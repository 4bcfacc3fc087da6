"""The alert filter of pages, API and stream, from query parameters: the same rules, the same clear errors.

Dates are whole days (``YYYY-MM-DD``) in the chosen site's time zone (UTC when no site is chosen); ``to`` is
inclusive. A user asking for a site they may not see gets an error, never another site's data.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from central.accounts import User
from central.console.deps import Console
from central.errors import AccessDenied, CentralError
from central.records import Alert
from central.store_console import AlertFilter
from smileloop_core.ids import id_problem

STATES = ("live", "open", "acknowledged", "resolved", "all")


class BadFilter(CentralError, ValueError):
    """A filter value that is not valid; the message names the parameter."""


def alert_filter(c: Console, user: User, *, site: str | None = None, location: str | None = None,
                 kind: str | None = None, state: str | None = "live", start: str | None = None,
                 end: str | None = None, assignee: str | None = None) -> AlertFilter:
    site, location, kind, assignee = (v or None for v in (site, location, kind, assignee))
    for name, value in (("site", site), ("location", location), ("kind", kind)):
        if value is not None and (problem := id_problem(value, name)):
            raise BadFilter(problem)
    if state and state not in STATES:
        raise BadFilter(f"state: {state!r} is not one of {', '.join(STATES)}")
    if site is not None and not user.sees(site):
        raise AccessDenied(f"{user.name} may not see site {site!r}")
    tz = ZoneInfo(c.timezone(site))
    since = _day(start, "from", tz)
    until = _day(end, "to", tz)
    if until is not None:
        until += timedelta(days=1)
    if since and until and since >= until:
        raise BadFilter("from: must not be after to")
    return AlertFilter(sites=user.scope(), site=site, location=location, kind=kind,
                       state=None if state in (None, "", "all") else state, since=since, until=until,
                       assignee=assignee)


def matches(f: AlertFilter, a: Alert) -> bool:
    """Does an alert the stream saw change belong in a list shown with this filter?"""
    if f.sites is not None and a["site"] not in f.sites:
        return False
    if (f.state == "live" and a["state"] == "resolved") or (f.state not in (None, "live") and a["state"] != f.state):
        return False
    return all(getattr(f, k) in (None, a.get(k)) for k in ("site", "location", "kind", "assignee"))


def _day(text: str | None, name: str, tz: ZoneInfo) -> datetime | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise BadFilter(f"{name}: {text[:40]!r} is not a date like 2026-12-03") from None
    if not 2000 <= day.year <= 2100:
        raise BadFilter(f"{name}: {day} is out of range")
    return datetime.combine(day, time(0), tz)
