"""Alert rules: what opens an alert, with parameters per site and location.

Every rule is a pure function of the store's contents, the org tree and a time ``now`` — no MQTT, no
sleeping — so tests move a FakeClock and call it. Ingest calls the rating and window rules for the location
that just received ratings; the service's periodic tick calls them all (silence and device health only change
with time). What a rule returns is a *candidate*; :func:`raise_candidates` opens it idempotently.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from central.errors import RuleError
from central.ingest import IncomingRating
from central.org import Org
from central.store import CentralStore, Opened, parse_time
from device.clock import utc_iso
from device.hours import is_open, open_seconds_between
from device.scales import get_scale

# Parameters every rule takes. Times are seconds; SLA clocks count opening hours only.
COMMON: dict[str, Any] = {"enabled": True, "cooldown": 0, "ack_sla": 0, "resolve_sla": 0, "reopen_within": 86400}


@dataclass(frozen=True)
class RuleSpec:
    name: str
    severity: str  # alert | health | kudos
    summary: str
    defaults: dict[str, Any] = field(default_factory=dict)


RULES: dict[str, RuleSpec] = {s.name: s for s in (
    RuleSpec("negative_rating", "alert", "each negative rating (a repeat press excepted)",
             {"cooldown": 300, "ack_sla": 900, "resolve_sla": 14400}),
    RuleSpec("negative_share", "alert", "share of negatives ≥ threshold in a window with enough responses",
             {"window": 900, "threshold": 0.5, "min_responses": 4, "ack_sla": 900, "resolve_sla": 14400}),
    RuleSpec("negative_count", "alert", "at least `count` negatives in a window",
             {"window": 3600, "count": 10, "ack_sla": 1800}),
    RuleSpec("low_index", "alert", "satisfaction index (0–100) below `below` over a window",
             {"window": 3600, "below": 50.0, "min_responses": 10, "ack_sla": 1800}),
    RuleSpec("recurring_reason", "alert", "the same reason ≥ `count` times in a site's day: a systemic problem",
             {"count": 5, "top": 3, "ack_sla": 86400, "reopen_within": 0}),
    RuleSpec("silence", "health", "no taps in opening hours for far longer than usual at that kiosk",
             {"factor": 4.0, "min_silence": 3600, "history_days": 14, "min_history": 20, "ack_sla": 3600,
              "auto_resolve": True}),
    RuleSpec("device_offline", "health", "device offline (or silent on its status topic) in opening hours",
             {"after": 600, "stale": 900, "ack_sla": 3600, "auto_resolve": True}),
    RuleSpec("backlog", "health", "ratings piling up on a device that cannot deliver",
             {"max_backlog": 500, "max_age": 1800, "auto_resolve": True}),
    RuleSpec("disk_low", "health", "device storage nearly full", {"min_free_mb": 200.0, "auto_resolve": True}),
    RuleSpec("burst", "alert", "suspicious burst: many taps within seconds at one device", {"taps": 10, "within": 10}),
    RuleSpec("same_value", "alert", "suspicious run: the same value over and over at one device",
             {"run": 15, "within": 300}),
    RuleSpec("happy_streak", "kudos", "celebrate: `run` positive ratings in a row at a location", {"run": 20}),
    RuleSpec("promoter_burst", "kudos", "celebrate: at least `count` positives in a window",
             {"count": 10, "window": 1800}),
)}
HEALTH_KINDS = ("silence", "device_offline", "backlog", "disk_low")
FEEDBACK_KINDS = ("negative_rating", "negative_share", "negative_count", "low_index", "recurring_reason")


class RuleBook:
    """Rule parameters: built-in defaults ← ``default`` ← ``<site>`` ← ``<site>/<location>`` from the rules
    document (``smileloop rules load rules.toml`` / ``rules set``)."""

    def __init__(self, doc: dict[str, Any] | None = None) -> None:
        self.doc = validate_rules(doc or {})

    def params(self, rule: str, site: str | None = None, location: str | None = None) -> dict[str, Any]:
        spec = RULES[rule]
        out = {**COMMON, **spec.defaults}
        scopes = ["default"]
        if site:
            scopes.append(site)
            if location:
                scopes.append(f"{site}/{location}")
        for scope in scopes:
            out.update(self.doc.get(scope, {}).get(rule, {}))
        return out


def validate_rules(doc: dict[str, Any]) -> dict[str, Any]:
    """Check every scope, rule and key of a rules document; errors name them (``store-1.burst.taps``)."""
    if not isinstance(doc, dict):
        raise RuleError("the rules document must be a table of scope → rule → settings")
    for scope, rules in doc.items():
        if not isinstance(rules, dict):
            raise RuleError(f"{scope}: must be a table of rule → settings")
        for rule, settings in rules.items():
            if rule not in RULES:
                raise RuleError(f"{scope}.{rule}: unknown rule (known: {', '.join(RULES)})")
            if not isinstance(settings, dict):
                raise RuleError(f"{scope}.{rule}: must be a table of settings")
            allowed = {**COMMON, **RULES[rule].defaults}
            for key, value in settings.items():
                if key not in allowed:
                    raise RuleError(f"{scope}.{rule}.{key}: unknown setting (known: {', '.join(sorted(allowed))})")
                settings[key] = coerce(f"{scope}.{rule}.{key}", allowed[key], value)
    return doc


def coerce(where: str, default: Any, value: Any) -> Any:
    """``value`` as the type of ``default``; strings are accepted (the CLI's ``key=value``)."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.lower() in ("true", "yes", "on")
        raise RuleError(f"{where}: must be true or false, got {value!r}")
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number < 0:
        raise RuleError(f"{where}: must be a number ≥ 0, got {value!r}")
    if isinstance(default, int):
        if number != int(number):
            raise RuleError(f"{where}: must be a whole number, got {value!r}")
        return int(number)
    return number


# --- candidates --------------------------------------------------------------------------------
def candidate(kind: str, site: str, location: str | None, title: str, detail: dict[str, Any], *,
              group_key: str, device_id: str | None = None, rating_id: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "site": site, "location": location, "device_id": device_id, "rating_id": rating_id,
            "group_key": group_key, "title": title, "detail": detail, "severity": RULES[kind].severity}


def negative_rating(r: IncomingRating, site: str, device: str) -> dict[str, Any] | None:
    """An alert for each negative rating; a repeat press (same visitor, within the response interval) or a staff
    test tap is not."""
    if r.sentiment != "negative" or "repeat" in r.flags or "test" in r.flags:
        return None
    return candidate("negative_rating", site, r.location, f"Unhappy visitor at {site} / {r.location}",
                     {"value": r.value, "scale": r.scale, "reason": r.reason, "comment": r.comment,
                      "rating_ts": utc_iso(r.ts)}, group_key=r.id, device_id=device, rating_id=r.id)


def rating_rule(book: RuleBook) -> Any:
    """``negative_rating`` with this rule book's per-location ``enabled`` and ``cooldown``."""
    def rule(r: IncomingRating, site: str, device: str) -> dict[str, Any] | None:
        params = book.params("negative_rating", site, r.location)
        if not params["enabled"]:
            return None
        c = negative_rating(r, site, device)
        if c is not None:
            c["cooldown"] = params["cooldown"]
        return c
    return rule


# Repeat presses and staff test taps are kept but are not visitors: patterns leave them out.
NOT_REPEAT = "(flags IS NULL OR (flags NOT LIKE '%\"repeat\"%' AND flags NOT LIKE '%\"test\"%'))"


@dataclass(frozen=True)
class Window:
    """Counts of the ratings in a window (repeat presses left out), from one grouped query."""

    responses: int
    negatives: int
    positives: int
    index: float  # mean rating on 0–100, whatever the scale; 100 with no ratings
    reasons: list[list[Any]]  # [[reason, negatives with it], …], most frequent first


def window(store: CentralStore, site: str, since: datetime, until: datetime, *,
           location: str | None = None) -> Window:
    sql = ("SELECT scale, value, sentiment, reason, count(*) AS n FROM ratings WHERE site = ? AND ts >= ? "
           f"AND ts <= ? AND {NOT_REPEAT}")
    params: list[Any] = [site, utc_iso(since), utc_iso(until)]
    if location is not None:
        sql += " AND location = ?"
        params.append(location)
    rows = store.query(sql + " GROUP BY scale, value, sentiment, reason", params)
    total = neg = pos = 0
    score = 0.0
    reasons: Counter[str] = Counter()
    for r in rows:
        n = int(r["n"])
        scale = get_scale(r["scale"])
        total += n
        score += n * 100.0 * (r["value"] - scale.low) / (scale.high - scale.low)
        if r["sentiment"] == "negative":
            neg += n
            if r["reason"]:
                reasons[r["reason"]] += n
        elif r["sentiment"] == "positive":
            pos += n
    return Window(responses=total, negatives=neg, positives=pos, index=score / total if total else 100.0,
                  reasons=[[k, v] for k, v in reasons.most_common()])


def location_rules(store: CentralStore, org: Org, book: RuleBook, site: str, location: str,
                   now: datetime) -> list[dict[str, Any]]:
    """Window rules of one location: share, count, index, kudos."""
    out: list[dict[str, Any]] = []
    where = f"{site} / {location}"
    key = f"{site}/{location}"
    windows: dict[float, Window] = {}

    def last(seconds: float) -> Window:
        if seconds not in windows:
            windows[seconds] = window(store, site, now - timedelta(seconds=seconds), now, location=location)
        return windows[seconds]

    p = book.params("negative_share", site, location)
    if p["enabled"]:
        w = last(p["window"])
        if w.responses >= p["min_responses"] and w.negatives / w.responses >= p["threshold"]:
            out.append(candidate("negative_share", site, location,
                                 f"{round(100 * w.negatives / w.responses)} % unhappy at {where} in the last "
                                 f"{_minutes(p['window'])}",
                                 {"negatives": w.negatives, "responses": w.responses, "window": p["window"],
                                  "reasons": w.reasons[:3]}, group_key=key))
    p = book.params("negative_count", site, location)
    if p["enabled"]:
        w = last(p["window"])
        if w.negatives >= p["count"]:
            out.append(candidate("negative_count", site, location,
                                 f"{w.negatives} unhappy visitors at {where} in the last {_minutes(p['window'])}",
                                 {"negatives": w.negatives, "window": p["window"], "reasons": w.reasons[:3]},
                                 group_key=key))
    p = book.params("low_index", site, location)
    if p["enabled"]:
        w = last(p["window"])
        if w.responses >= p["min_responses"] and w.index < p["below"]:
            out.append(candidate("low_index", site, location, f"Satisfaction index {w.index:.0f} at {where}",
                                 {"index": round(w.index, 1), "below": p["below"], "responses": w.responses,
                                  "window": p["window"]}, group_key=key))
    day = now.astimezone(ZoneInfo(org.hours(site).timezone)).date().isoformat()
    p = book.params("happy_streak", site, location)
    if p["enabled"]:
        rows = store.query("SELECT sentiment FROM ratings WHERE site = ? AND location = ? AND ts <= ? "
                           f"AND {NOT_REPEAT} ORDER BY ts DESC, seq DESC LIMIT ?",
                           (site, location, utc_iso(now), int(p["run"])))
        if len(rows) >= p["run"] and all(r["sentiment"] == "positive" for r in rows):
            out.append(candidate("happy_streak", site, location, f"{p['run']} happy visitors in a row at {where}!",
                                 {"run": p["run"]}, group_key=f"{key}/{day}"))
    p = book.params("promoter_burst", site, location)
    if p["enabled"]:
        w = last(p["window"])
        if w.positives >= p["count"]:
            out.append(candidate("promoter_burst", site, location,
                                 f"{w.positives} delighted visitors at {where} in the last {_minutes(p['window'])}!",
                                 {"positives": w.positives, "window": p["window"]}, group_key=f"{key}/{day}"))
    return out


def device_rules(store: CentralStore, book: RuleBook, site: str, device: str, location: str | None,
                 now: datetime) -> list[dict[str, Any]]:
    """Misuse rules of one device: bursts of taps, the same value over and over."""
    out: list[dict[str, Any]] = []
    key = f"{site}/{device}"
    p = book.params("burst", site, location)
    if p["enabled"]:
        rows = store.query("SELECT ts FROM ratings WHERE site = ? AND device_id = ? AND ts >= ? AND ts <= ? "
                           "ORDER BY ts", (site, device, utc_iso(now - timedelta(seconds=max(p["within"], 60))),
                                           utc_iso(now)))
        times = [parse_time(r["ts"]) for r in rows]
        n = int(p["taps"])
        for i in range(len(times) - n + 1):
            first, last = times[i], times[i + n - 1]
            if first and last and (last - first).total_seconds() <= p["within"]:
                out.append(candidate("burst", site, location, f"Suspicious burst of taps at {site} / {device}",
                                     {"taps": n, "within": p["within"], "from": utc_iso(first), "to": utc_iso(last)},
                                     group_key=key, device_id=device))
                break
    p = book.params("same_value", site, location)
    if p["enabled"]:
        rows = store.query("SELECT value, ts FROM ratings WHERE site = ? AND device_id = ? AND ts <= ? "
                           "ORDER BY ts DESC, seq DESC LIMIT ?", (site, device, utc_iso(now), int(p["run"])))
        if len(rows) >= p["run"] and len({r["value"] for r in rows}) == 1:
            span = (parse_time(rows[0]["ts"]) - parse_time(rows[-1]["ts"])).total_seconds()  # type: ignore[operator]
            if span <= p["within"]:
                out.append(candidate("same_value", site, location,
                                     f"The same answer {p['run']} times in a row at {site} / {device}",
                                     {"value": rows[0]["value"], "run": p["run"], "seconds": round(span, 1)},
                                     group_key=key, device_id=device))
    return out


def recurring_reason(store: CentralStore, org: Org, book: RuleBook, site: str, now: datetime) -> list[dict[str, Any]]:
    """The same negative reason ≥ ``count`` times in the site's local day: a process to fix."""
    p = book.params("recurring_reason", site)
    if not p["enabled"]:
        return []
    tz = ZoneInfo(org.hours(site).timezone)
    start = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = store.query("SELECT reason, location, count(*) AS n FROM ratings WHERE site = ? AND ts >= ? AND ts <= ? "
                       f"AND sentiment = 'negative' AND reason IS NOT NULL AND {NOT_REPEAT} "
                       "GROUP BY reason, location", (site, utc_iso(start), utc_iso(now)))
    counts: Counter[str] = Counter()
    places: dict[str, Counter[str]] = {}
    for r in rows:
        counts[r["reason"]] += int(r["n"])
        places.setdefault(r["reason"], Counter())[r["location"]] += int(r["n"])
    top = [[reason, n] for reason, n in counts.most_common(int(p["top"]))]
    day = start.date().isoformat()
    return [candidate("recurring_reason", site, None, f"'{reason}' again and again at {site}: {n} times today",
                      {"reason": reason, "count": n, "day": day, "top_reasons": top,
                       "locations": dict(places[reason].most_common())}, group_key=f"{site}/{reason}/{day}")
            for reason, n in counts.most_common() if n >= p["count"]]


def status_rules(store: CentralStore, org: Org, book: RuleBook, now: datetime) -> list[dict[str, Any]]:
    """Device health from the retained status topic: offline, backlog growing, disk low."""
    out: list[dict[str, Any]] = []
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
    rows = store.query("SELECT ts FROM ratings WHERE site = ? AND device_id = ? AND ts >= ? AND ts <= ? "
                       "ORDER BY ts DESC LIMIT 500", (site, device,
                                                      utc_iso(now - timedelta(days=p["history_days"])), utc_iso(now)))
    times = sorted(t for t in (parse_time(r["ts"]) for r in rows) if t)
    gaps = [g for g in (open_seconds_between(hours, a, b) for a, b in itertools.pairwise(times)) if g > 0]
    if len(gaps) < max(2, p["min_history"]):
        return None
    return statistics.quantiles(gaps, n=10)[-1]


def silence(store: CentralStore, org: Org, book: RuleBook, site: str, device: str, location: str | None,
            now: datetime, *, usual: float | None = None) -> dict[str, Any] | None:
    """No taps for far longer than usual, counting opening hours only: a dead kiosk, not "no complaints".

    The alert fires past ``max(min_silence, factor × usual)`` opening seconds since the last tap, ``usual``
    being :func:`usual_gap` (computed here unless given). A device known to be offline is left to
    ``device_offline`` (one cause, one alert).
    """
    p = book.params("silence", site, location)
    hours = org.hours(site)
    if not p["enabled"] or not is_open(hours, now):
        return None
    status = store.query("SELECT state FROM device_status WHERE site = ? AND device_id = ?", (site, device))
    if status and status[0]["state"] == "offline":
        return None
    last_row = store.query("SELECT ts FROM ratings WHERE site = ? AND device_id = ? AND ts <= ? "
                           "ORDER BY ts DESC LIMIT 1", (site, device, utc_iso(now)))
    if usual is None:
        usual = usual_gap(store, org, book, site, device, location, now)
    last = parse_time(last_row[0]["ts"]) if last_row else None
    if usual is None or last is None:
        return None
    quiet = open_seconds_between(hours, last, now)
    limit = max(p["min_silence"], p["factor"] * usual)
    if quiet < limit:
        return None
    state = status[0]["state"] if status else "unknown"
    return candidate("silence", site, location, f"No taps at {site} / {device} for {_minutes(quiet)} of opening time",
                     {"last_tap": utc_iso(last), "silent_open_seconds": round(quiet),
                      "usual_gap_seconds": round(usual), "limit_seconds": round(limit), "device_state": state},
                     group_key=f"{site}/{device}", device_id=device)


def recovered(store: CentralStore, book: RuleBook, alert: dict[str, Any], now: datetime) -> str | None:
    """Why a live device-health alert no longer holds (the device is back, the backlog drained, a tap came),
    or None. Only for rules with ``auto_resolve``; what is wrong at night stays wrong until it is fixed."""
    kind, site, device = alert["kind"], alert["site"], alert.get("device_id")
    p = book.params(kind, site, alert.get("location")) if kind in RULES else {}
    if not p.get("auto_resolve") or not device:
        return None
    if kind == "silence":
        last = (alert.get("detail") or {}).get("last_tap")
        rows = store.query("SELECT ts FROM ratings WHERE site = ? AND device_id = ? AND ts > ? ORDER BY ts LIMIT 1",
                           (site, device, last or ""))
        return f"a tap again at {rows[0]['ts']}" if rows else None
    rows = store.query("SELECT * FROM device_status WHERE site = ? AND device_id = ?", (site, device))
    if not rows or rows[0]["state"] != "online":
        return None
    s = rows[0]
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


def after_ingest(store: CentralStore, org: Org, book: RuleBook, site: str, device: str, locations: set[str],
                 now: datetime) -> list[dict[str, Any]]:
    """The rules new ratings can trigger: windows of their locations, the device's misuse, the site's reasons."""
    out: list[dict[str, Any]] = []
    for location in sorted(locations):
        out += location_rules(store, org, book, site, location, now)
    out += device_rules(store, book, site, device, next(iter(sorted(locations)), None), now)
    out += recurring_reason(store, org, book, site, now)
    return out


def periodic(store: CentralStore, org: Org, book: RuleBook, now: datetime, *, lookback: float = 3600.0,
             usual_cache: dict[tuple[str, str], tuple[datetime, float | None]] | None = None) -> list[dict[str, Any]]:
    """Everything time alone can trigger: device health, silence; and windows of recently active locations.
    ``usual_cache`` keeps each device's usual gap for an hour (it is the costly part of silence)."""
    out = status_rules(store, org, book, now)
    since = utc_iso(now - timedelta(seconds=lookback))
    for r in store.query("SELECT DISTINCT site, location FROM ratings WHERE ts >= ?", (since,)):
        out += location_rules(store, org, book, r["site"], r["location"], now)
    devices = {(r["site"], r["device_id"]): r["location"] for r in store.query(
        "SELECT site, device_id, location FROM ratings WHERE received_at >= ? GROUP BY site, device_id, location",
        (utc_iso(now - timedelta(days=14)),))}
    for (site, device), location in sorted(devices.items()):
        usual: float | None = None
        if usual_cache is not None:
            cached = usual_cache.get((site, device))
            if cached is None or abs((now - cached[0]).total_seconds()) > 3600:
                cached = (now, usual_gap(store, org, book, site, device, location, now))
                usual_cache[(site, device)] = cached
            usual = cached[1]
            if usual is None:
                continue
        c = silence(store, org, book, site, device, location, now, usual=usual)
        if c:
            out.append(c)
    return out


def raise_candidates(store: CentralStore, book: RuleBook, candidates: list[dict[str, Any]],
                     now: datetime) -> list[Opened]:
    """Open each candidate with its rule's cooldown and reopen window; what happened to each."""
    out = []
    for c in candidates:
        p = book.params(c["kind"], c["site"], c.get("location"))
        out.append(store.open_alert(c, now, cooldown=p["cooldown"], reopen_within=p["reopen_within"]))
    return out


def _minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h"
