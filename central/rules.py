"""Alert rules: what opens an alert, with parameters per site and location.

Every rule is a pure function of the store's contents, the org tree and a time ``now`` — no MQTT, no
sleeping — so tests move a FakeClock and call it. Ingest calls the rating and window rules for the location
that just received ratings; the service's periodic tick calls them all (silence and device health only change
with time). What a rule returns is a *candidate*; :func:`raise_candidates` opens it idempotently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from central.health import recovered, silence, status_rules, usual_gap
from central.ingest import IncomingRating
from central.org import Org
from central.records import Candidate, Opened, RatingGroup
from central.rulebook import FEEDBACK_KINDS, HEALTH_KINDS, RULES, RuleBook, candidate
from central.rulebook import minutes as _minutes
from central.store import AlertRule, CentralStore, Late
from smileloop_core.clock import utc_iso
from smileloop_core.scales import get_scale


def negative_rating(r: IncomingRating, site: str, device: str) -> Candidate | None:
    """An alert for each negative rating; a repeat press (same visitor, within the response interval) or a staff
    test tap is not."""
    if r.sentiment != "negative" or "repeat" in r.flags or "test" in r.flags:
        return None
    return candidate("negative_rating", site, r.location, f"Unhappy visitor at {site} / {r.location}",
                     {"value": r.value, "scale": r.scale, "reason": r.reason, "comment": r.comment,
                      "rating_ts": utc_iso(r.ts)}, group_key=r.id, device_id=device, rating_id=r.id)


def rating_rule(book: RuleBook) -> AlertRule:
    """``negative_rating`` with this rule book's per-location ``enabled`` and ``cooldown``."""
    def rule(r: IncomingRating, site: str, device: str) -> Candidate | None:
        params = book.params("negative_rating", site, r.location)
        if not params["enabled"]:
            return None
        c = negative_rating(r, site, device)
        return replace(c, cooldown=float(params["cooldown"])) if c is not None else None
    return rule


def late_rule(book: RuleBook) -> Late:
    """Ratings older than ``backlog_arrived.after`` when they reach central: counted per location into one
    "backlog arrived" summary (a live one takes the new counts) instead of one page per rating."""
    after = float(book.params("backlog_arrived")["after"]) if book.params("backlog_arrived")["enabled"] else 1e18

    def summary(site: str, location: str, counts: dict[str, Any]) -> Candidate | None:
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


@dataclass(frozen=True)
class Window:
    """Counts of the ratings in a window (repeat presses and test taps left out)."""

    responses: int
    negatives: int
    positives: int
    index: float  # mean rating on 0–100, whatever the scale; 100 with no ratings
    reasons: list[list[Any]]  # [[reason, negatives with it], …], most frequent first


def window(store: CentralStore, site: str, since: datetime, until: datetime, *,
           location: str | None = None) -> Window:
    return summarise(store.rating_groups(site, since, until, location=location))


def summarise(groups: Iterable[RatingGroup]) -> Window:
    """A window's counts and index from its grouped ratings."""
    total = neg = pos = 0
    score = 0.0
    reasons: Counter[str] = Counter()
    for g in groups:
        n = g.n
        scale = get_scale(g.scale)
        total += n
        score += n * 100.0 * (g.value - scale.low) / (scale.high - scale.low)
        if g.sentiment == "negative":
            neg += n
            if g.reason:
                reasons[g.reason] += n
        elif g.sentiment == "positive":
            pos += n
    return Window(responses=total, negatives=neg, positives=pos, index=score / total if total else 100.0,
                  reasons=[[k, v] for k, v in reasons.most_common()])


def location_rules(store: CentralStore, org: Org, book: RuleBook, site: str, location: str,
                   now: datetime) -> list[Candidate]:
    """Window rules of one location: share, count, index, kudos."""
    out: list[Candidate] = []
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
        run = store.recent_sentiments(site, location, now, int(p["run"]))
        if len(run) >= p["run"] and all(sentiment == "positive" for sentiment in run):
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
                 now: datetime) -> list[Candidate]:
    """Misuse rules of one device: bursts of taps, the same value over and over."""
    out: list[Candidate] = []
    key = f"{site}/{device}"
    p = book.params("burst", site, location)
    if p["enabled"]:
        times = store.tap_times(site, device, now - timedelta(seconds=max(p["within"], 60)), now)
        n = int(p["taps"])
        for i in range(len(times) - n + 1):
            first, last = times[i], times[i + n - 1]
            if (last - first).total_seconds() <= p["within"]:
                out.append(candidate("burst", site, location, f"Suspicious burst of taps at {site} / {device}",
                                     {"taps": n, "within": p["within"], "from": utc_iso(first), "to": utc_iso(last)},
                                     group_key=key, device_id=device))
                break
    p = book.params("same_value", site, location)
    if p["enabled"]:
        taps = store.recent_taps(site, device, now, int(p["run"]))
        if len(taps) >= p["run"] and len({t.value for t in taps}) == 1:
            span = (taps[0].ts - taps[-1].ts).total_seconds()
            if span <= p["within"]:
                out.append(candidate("same_value", site, location,
                                     f"The same answer {p['run']} times in a row at {site} / {device}",
                                     {"value": taps[0].value, "run": p["run"], "seconds": round(span, 1)},
                                     group_key=key, device_id=device))
    return out


def recurring_reason(store: CentralStore, org: Org, book: RuleBook, site: str, now: datetime) -> list[Candidate]:
    """The same negative reason ≥ ``count`` times in the site's local day: a process to fix."""
    p = book.params("recurring_reason", site)
    if not p["enabled"]:
        return []
    tz = ZoneInfo(org.hours(site).timezone)
    start = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    counts: Counter[str] = Counter()
    places: dict[str, Counter[str]] = {}
    for r in store.negative_reasons(site, start, now):
        counts[r.reason] += r.n
        places.setdefault(r.reason, Counter())[r.location] += r.n
    top = [[reason, n] for reason, n in counts.most_common(int(p["top"]))]
    day = start.date().isoformat()
    return [candidate("recurring_reason", site, None, f"'{reason}' again and again at {site}: {n} times today",
                      {"reason": reason, "count": n, "day": day, "top_reasons": top,
                       "locations": dict(places[reason].most_common())}, group_key=f"{site}/{reason}/{day}")
            for reason, n in counts.most_common() if n >= p["count"]]


def after_ingest(store: CentralStore, org: Org, book: RuleBook, site: str, device: str, locations: set[str],
                 now: datetime) -> list[Candidate]:
    """The rules new ratings can trigger: windows of their locations, the device's misuse, the site's reasons."""
    out: list[Candidate] = []
    for location in sorted(locations):
        out += location_rules(store, org, book, site, location, now)
    out += device_rules(store, book, site, device, next(iter(sorted(locations)), None), now)
    out += recurring_reason(store, org, book, site, now)
    return out


def periodic(store: CentralStore, org: Org, book: RuleBook, now: datetime, *, lookback: float = 3600.0,
             usual_cache: dict[tuple[str, str], tuple[datetime, float | None]] | None = None) -> list[Candidate]:
    """Everything time alone can trigger: device health, silence; and windows of recently active locations.
    ``usual_cache`` keeps each device's usual gap for an hour (it is the costly part of silence)."""
    out = status_rules(store, org, book, now)
    for site, location in store.active_locations(now - timedelta(seconds=lookback)):
        out += location_rules(store, org, book, site, location, now)
    devices = {(site, device): location for site, device, location in store.active_devices(now - timedelta(days=14))}
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


def raise_candidates(store: CentralStore, book: RuleBook, candidates: Iterable[Candidate],
                     now: datetime) -> list[Opened]:
    """Open each candidate with its rule's cooldown and reopen window; what happened to each."""
    out = []
    for c in candidates:
        p = book.params(c.kind, c.site, c.location)
        out.append(store.open_alert(c, now, cooldown=p["cooldown"], reopen_within=p["reopen_within"]))
    return out


__all__ = ["FEEDBACK_KINDS", "HEALTH_KINDS", "RULES", "Candidate", "RuleBook", "after_ingest", "candidate",
           "device_rules", "late_rule", "location_rules", "negative_rating", "periodic", "raise_candidates",
           "rating_rule", "recovered", "recurring_reason", "silence", "status_rules", "summarise", "usual_gap",
           "window"]
