"""Rule specifications and the rule book: which rules exist, their parameters and defaults, and the settings
per site and location (``smileloop rules load/set``). No store, no clock: what every rule module reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from central.errors import RuleError
from central.records import Candidate

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
    RuleSpec("backlog_arrived", "alert", "ratings that arrive `after` seconds or more after they were made (an "
             "outage, a kiosk offline for a day): one summary per location instead of a page per rating",
             {"after": 900, "min_negatives": 1, "ack_sla": 3600}),
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
              group_key: str, device_id: str | None = None, rating_id: str | None = None) -> Candidate:
    """A rule's :class:`Candidate`, with the severity of its kind."""
    return Candidate(kind=kind, site=site, location=location, title=title, detail=detail, group_key=group_key,
                     device_id=device_id, rating_id=rating_id, severity=RULES[kind].severity)


def minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h"
