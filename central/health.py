"""Device-health rules: offline, backlog, disk, and silence in opening hours; and when a health alert has
recovered. Time alone changes these, so the periodic tick runs them."""

from __future__ import annotations

import itertools
import statistics
from datetime import datetime, timedelta

from central.org import Org
from central.records import Alert, Candidate
from central.rulebook import RULES, RuleBook, candidate
from central.rulebook import minutes as _minutes
from central.store import CentralStore, parse_time
from smileloop_core.clock import utc_iso
from smileloop_core.hours import is_open, open_seconds_between


def status_rules(store: CentralStore, org: Org, book: RuleBook, now: datetime) -> list[Candidate]:
    """Device health from the retained status topic: offline, backlog growing, disk low."""
    out: list[Candidate] = []
    for s in store.statuses():
        site, device = s["site"], s["device_id"]
        location = s["location"] or org.location_of(site, device)
        key = f"{site}/{device}"
        hours = org.hours(site)
        p = book.params("device_offline", site, location)
        received = parse_time(s["received_at"])
        offline_since: datetime | None = None
        if s["state"] == "offline":
            offline_since = parse_time(s["since"])
        elif received and (now - received).total_seconds() > p["stale"]:
            offline_since = received  # no heartbeat: gone without a last will reaching us
        if p["enabled"] and offline_since and is_open(hours, now):
            down = open_seconds_between(hours, offline_since, now)
            if down >= p["after"]:
                out.append(candidate("device_offline", site, location, f"Device {device} at {site} is offline",
                                     {"since": utc_iso(offline_since), "open_seconds_down": round(down),
                                      "backlog": s["backlog"]}, group_key=key, device_id=device))
        if offline_since:
            continue
        p = book.params("backlog", site, location)
        oldest = parse_time(s["oldest_unsent"])
        age = (now - oldest).total_seconds() if oldest else 0.0
        if p["enabled"] and ((s["backlog"] or 0) >= p["max_backlog"] or age >= p["max_age"]):
            out.append(candidate("backlog", site, location, f"Ratings piling up on {device} at {site}",
                                 {"backlog": s["backlog"], "oldest_unsent": s["oldest_unsent"],
                                  "oldest_age": round(age)}, group_key=key, device_id=device))
        p = book.params("disk_low", site, location)
        if p["enabled"] and s["disk_free_mb"] is not None and s["disk_free_mb"] < p["min_free_mb"]:
            out.append(candidate("disk_low", site, location, f"Disk almost full on {device} at {site}",
                                 {"disk_free_mb": s["disk_free_mb"], "min_free_mb": p["min_free_mb"]},
                                 group_key=key, device_id=device))
    return out


def usual_gap(store: CentralStore, org: Org, book: RuleBook, site: str, device: str, location: str | None,
              now: datetime) -> float | None:
    """The 90th percentile of the gaps between taps at a device over ``history_days`` (the last 500 taps), in
    opening seconds; None without ``min_history`` gaps. It changes slowly, so callers may cache it for an hour."""
    p = book.params("silence", site, location)
    hours = org.hours(site)
    times = store.tap_times(site, device, now - timedelta(days=p["history_days"]), now, newest=500)
    gaps = [g for g in (open_seconds_between(hours, a, b) for a, b in itertools.pairwise(times)) if g > 0]
    if len(gaps) < max(2, p["min_history"]):
        return None
    return statistics.quantiles(gaps, n=10)[-1]


def silence(store: CentralStore, org: Org, book: RuleBook, site: str, device: str, location: str | None,
            now: datetime, *, usual: float | None = None) -> Candidate | None:
    """No taps for far longer than usual, counting opening hours only: a dead kiosk, not "no complaints".

    The alert fires past ``max(min_silence, factor × usual)`` opening seconds since the last tap, ``usual``
    being :func:`usual_gap` (computed here unless given). A device known to be offline is left to
    ``device_offline`` (one cause, one alert).
    """
    p = book.params("silence", site, location)
    hours = org.hours(site)
    if not p["enabled"] or not is_open(hours, now):
        return None
    status = store.status(site, device)
    if status and status["state"] == "offline":
        return None
    last = store.last_tap(site, device, now)
    if usual is None:
        usual = usual_gap(store, org, book, site, device, location, now)
    if usual is None or last is None:
        return None
    quiet = open_seconds_between(hours, last, now)
    limit = max(p["min_silence"], p["factor"] * usual)
    if quiet < limit:
        return None
    state = status["state"] if status else "unknown"
    return candidate("silence", site, location, f"No taps at {site} / {device} for {_minutes(quiet)} of opening time",
                     {"last_tap": utc_iso(last), "silent_open_seconds": round(quiet),
                      "usual_gap_seconds": round(usual), "limit_seconds": round(limit), "device_state": state},
                     group_key=f"{site}/{device}", device_id=device)


def recovered(store: CentralStore, book: RuleBook, alert: Alert, now: datetime) -> str | None:
    """Why a live device-health alert no longer holds (the device is back, the backlog drained, a tap came),
    or None. Only for rules with ``auto_resolve``; what is wrong at night stays wrong until it is fixed."""
    kind, site, device = alert["kind"], alert["site"], alert.get("device_id")
    p = book.params(kind, site, alert.get("location")) if kind in RULES else {}
    if not p.get("auto_resolve") or not device:
        return None
    if kind == "silence":
        last = (alert.get("detail") or {}).get("last_tap")
        tap = store.next_tap(site, device, last or "")
        return f"a tap again at {tap}" if tap else None
    s = store.status(site, device)
    if s is None or s["state"] != "online":
        return None
    received = parse_time(s["received_at"])
    fresh = received is not None and (now - received).total_seconds() <= book.params("device_offline", site)["stale"]
    if kind == "device_offline":
        return f"online again since {s['since']}" if fresh else None
    if kind == "backlog":
        oldest = parse_time(s["oldest_unsent"])
        age = (now - oldest).total_seconds() if oldest else 0.0
        if fresh and (s["backlog"] or 0) < p["max_backlog"] and age < p["max_age"]:
            return f"backlog down to {s['backlog'] or 0}"
        return None
    if kind == "disk_low" and s["disk_free_mb"] is not None and s["disk_free_mb"] >= p["min_free_mb"]:
        return f"{s['disk_free_mb']:.0f} MB free again"
    return None
