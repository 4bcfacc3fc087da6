"""The alert lifecycle: open → acknowledged (by whom) → resolved (root cause and action, both required) →
reopened if it comes back. Every change is one transaction with its row in ``alert_audit``.

Resolving a feedback alert also records a "you said, we did" item for the location's kiosks (the service
publishes it, retained) and, when the visitor left contact details with consent, queues a follow-up to them.
"""

from __future__ import annotations

from datetime import datetime

from central.errors import InvalidTransition
from central.notify import Dispatcher
from central.records import Alert
from central.rulebook import FEEDBACK_KINDS
from central.store import CentralStore


def _who(by: str) -> str:
    if not by or not by.strip():
        raise InvalidTransition("say who you are (--by NAME): the audit records every change with its author")
    return by.strip()


def acknowledge(store: CentralStore, alert_id: str, by: str, now: datetime, note: str | None = None) -> Alert:
    """Someone has seen it and owns it now; the SLA moves from 'acknowledge' to 'resolve'."""
    who = _who(by)
    with store.transaction():
        alert = store.alert(alert_id)
        if alert["state"] != "open":
            by_whom = f" by {alert['acked_by']}" if alert["acked_by"] else ""
            raise InvalidTransition(f"alert {alert['id'][:8]} is {alert['state']}{by_whom}; only an open alert can be "
                                    "acknowledged")
        store.set_acknowledged(alert["id"], who, now)
        store.audit(alert["id"], who, "acknowledged", "open", "acknowledged", now, {"note": note} if note else None)
    return store.alert(alert["id"])


def default_outcome(alert: Alert, action: str) -> str:
    """"You said …, we did …" from the alert's reason and the recorded action."""
    d = alert.get("detail") or {}
    reason = d.get("reason") or (d.get("reasons") or [[None]])[0][0]
    said = f"You told us about {str(reason).replace('_', ' ')}" if reason else "You told us your visit could be better"
    return f"{said}. {action.strip().rstrip('.')}."


def resolve(store: CentralStore, alert_id: str, by: str, root_cause: str, action: str, now: datetime, *,
            outcome: str | None = None, publish: bool = True, dispatcher: Dispatcher | None = None) -> Alert:
    """Close the loop: why it happened and what was done, both required. Grouped alerts close with it."""
    who = _who(by)
    if not (root_cause or "").strip() or not (action or "").strip():
        raise InvalidTransition("resolving needs both a root cause (--root-cause) and the action taken (--action)")
    with store.transaction():
        alert = store.alert(alert_id)
        if alert["state"] == "resolved":
            raise InvalidTransition(f"alert {alert['id'][:8]} is already resolved by {alert['resolved_by']}")
        family = [alert, *store.grouped_under(alert["id"])]
        for a in family:
            store.set_resolved(a["id"], who, now, root_cause.strip(), action.strip())
            store.audit(a["id"], who, "resolved", a["state"], "resolved", now,
                        {"root_cause": root_cause.strip(), "action": action.strip()}
                        if a is alert else {"with": alert["id"]})
        location = alert["location"]
        if publish and alert["kind"] in FEEDBACK_KINDS and location:
            text = (outcome or "").strip() or default_outcome(alert, action)
            store.add_outcome(alert["id"], alert["site"], location, {"en": text}, now)
        if dispatcher is not None:
            for contact in store.followup_contacts(alert["id"]):
                dispatcher.queue_followup(alert, contact, (outcome or "").strip() or default_outcome(alert, action),
                                          now)
    return store.alert(alert["id"])


def auto_resolve(store: CentralStore, alert_id: str, why: str, now: datetime) -> Alert | None:
    """Central closes a device-health alert whose condition cleared by itself; None if someone resolved it first.
    The audit says so, and a person can still reopen it with a root cause."""
    with store.transaction():
        alert = store.alert(alert_id)
        if alert["state"] == "resolved":
            return None
        store.set_recovered(alert["id"], why, now)
        store.audit(alert["id"], "central", "recovered", alert["state"], "resolved", now, {"why": why})
    return store.alert(alert_id)


def reopen(store: CentralStore, alert_id: str, by: str, why: str, now: datetime,
           dispatcher: Dispatcher | None = None) -> Alert:
    """It came back (or the fix did not hold): open again, from the first level of the chain."""
    who = _who(by)
    if not (why or "").strip():
        raise InvalidTransition("say why it is reopened (--why)")
    with store.transaction():
        alert = store.alert(alert_id)
        if alert["state"] != "resolved":
            raise InvalidTransition(f"alert {alert['id'][:8]} is {alert['state']}; only a resolved alert can reopen")
        live = store.live_alert(alert["kind"], alert["group_key"]) if alert["group_key"] else None
        if live:
            raise InvalidTransition(f"alert {live['id'][:8]} is already open for the same cause; work on that one")
        store.set_reopened(alert["id"])
        store.audit(alert["id"], who, "reopened", "resolved", "open", now, {"why": why.strip()})
        fresh = store.alert(alert["id"])
        if dispatcher is not None:
            dispatcher.queue(fresh, now, purpose=f"reopened-{fresh['reopened']}")
    return fresh
