"""Alert rules: what opens an alert, with parameters per site and location.

Every rule is a pure function of the store's contents, the org tree and a time ``now`` — no MQTT, no
sleeping — so tests move a FakeClock and call it. Ingest calls the rating and window rules for the location
that just received ratings; the service's periodic tick calls them all (silence and device health only change
with time). What a rule returns is a *candidate*; :func:`raise_candidates` opens it idempotently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from central.health import recovered, silence, status_rules, usual_gap
from central.ingest import IncomingRating
from central.org import Org
from central.rulebook import FEEDBACK_KINDS, HEALTH_KINDS, RULES, RuleBook, candidate
from central.rulebook import minutes as _minutes
from central.store import CentralStore, Late, Opened, parse_time
from device.clock import utc_iso
from device.scales import get_scale


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


def late_rule(book: RuleBook) -> Late:
    """Ratings older than ``backlog_arrived.after`` when they reach central: counted per location into one
    "backlog arrived" summary (a live one takes the new counts) instead of one page per rating."""
    after = float(book.params("backlog_arrived")["after"]) if book.params("backlog_arrived")["enabled"] else 1e18

    def summary(site: str, location: str, counts: dict[str, Any]) -> dict[str, Any] | None:
        p = book.params("backlog_arrived", site, location)
        if not p["enabled"] or counts["negatives"] < p["min_negatives"]:
            return None
        worst = sorted(counts["reasons"].items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        because = f" — most often {', '.join(f'{r} ({n})' for r, n in worst)}" if worst else ""
        return candidate("backlog_arrived", site, location,
                         f"{counts['ratings']} late ratings arrived from {site} / {location}, "
                         f"{counts['negatives']} unhappy{because}",
                         {**counts, "top_reasons": [[r, n] for r, n in worst]},
                         group_key=f"{site}/{location}/backlog")

    return Late(after=after, candidate=summary)


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


__all__ = ["FEEDBACK_KINDS", "HEALTH_KINDS", "RULES", "RuleBook", "after_ingest", "candidate", "device_rules",
           "late_rule", "location_rules", "negative_rating", "periodic", "raise_candidates", "rating_rule", "recovered",
           "recurring_reason", "silence", "status_rules", "usual_gap", "window"]
