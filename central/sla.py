"""SLA timers and escalation up the org tree. The clocks count opening hours only: an alert raised at 19:55
in a store closing at 20:00 has not waited all night when the store opens.

An open alert must be acknowledged within its rule's ``ack_sla``, an acknowledged one resolved within
``resolve_sla`` (seconds of opening time; 0 = no SLA). Past that, the alert climbs one level of its chain
(location → site → org), and the clock starts again for the next level.
"""

from __future__ import annotations

from datetime import datetime

from central.org import Org
from central.records import Alert
from central.rulebook import RuleBook
from central.store import CentralStore, parse_time
from smileloop_core.hours import open_seconds_between


def overdue(store: CentralStore, org: Org, book: RuleBook, now: datetime) -> list[tuple[Alert, float]]:
    """Live alerts past their SLA that have a level above them, with the opening seconds they waited."""
    out = []
    for alert in store.alerts(state="live", limit=10_000):
        if alert.get("parent_id") or alert.get("severity") == "kudos":
            continue
        p = book.params(alert["kind"], alert["site"], alert.get("location"))
        if alert["state"] == "open":
            sla, start = p["ack_sla"], alert.get("escalated_at") or alert["opened_at"]
        else:
            sla, start = p["resolve_sla"], max(alert.get("acked_at") or "", alert.get("escalated_at") or "")
        since = parse_time(start)
        if sla <= 0 or since is None:
            continue
        if org.level(alert["site"], alert.get("location"), alert["level"] + 1) is None:
            continue  # already at the top of its chain
        waited = open_seconds_between(org.hours(alert["site"]), since, now)
        if waited >= sla:
            out.append((alert, waited))
    return out


def escalate(store: CentralStore, alert: Alert, now: datetime, waited: float) -> Alert | None:
    """Move the alert one level up; None if another worker already did (the update is conditional)."""
    with store.transaction():
        if not store.set_escalated(alert["id"], alert["level"], alert["state"], now):
            return None
        store.audit(alert["id"], "central", "escalated", alert["state"], alert["state"], now,
                    {"to_level": alert["level"] + 1, "waited_open_seconds": round(waited)})
    return store.alert(alert["id"])
