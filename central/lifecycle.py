"""The alert lifecycle: open → acknowledged (by whom) → resolved (root cause and action, both required) →
reopened if it comes back. Every change is one transaction with its row in ``alert_audit``.

Resolving a feedback alert also records a "you said, we did" item for the location's kiosks (the service
publishes it, retained) and, when the visitor left contact details with consent, queues a follow-up to them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from central.errors import InvalidTransition
from central.notify import Dispatcher
from central.rulebook import FEEDBACK_KINDS
from central.store import CentralStore
from device.clock import utc_iso


def _who(by: str) -> str:
    if not by or not by.strip():
        raise InvalidTransition("say who you are (--by NAME): the audit records every change with its author")
    return by.strip()


def acknowledge(store: CentralStore, alert_id: str, by: str, now: datetime, note: str | None = None) -> dict[str, Any]:
    """Someone has seen it and owns it now; the SLA moves from 'acknowledge' to 'resolve'."""
    who = _who(by)
    with store.db.transaction():
        alert = store.alert(alert_id)
        if alert["state"] != "open":
            raise InvalidTransition(f"alert {alert['id'][:8]} is {alert['state']}"
                                    f"{' by ' + alert['acked_by'] if alert.get('acked_by') else ''}; only an open "
                                    "alert can be acknowledged")
        store.db.execute("UPDATE alerts SET state = 'acknowledged', acked_by = ?, acked_at = ? WHERE id = ?",
                         (who, utc_iso(now), alert["id"]))
        store.audit(alert["id"], who, "acknowledged", "open", "acknowledged", now, {"note": note} if note else None)
    return store.alert(alert["id"])


def default_outcome(alert: dict[str, Any], action: str) -> str:
    """"You said …, we did …" from the alert's reason and the recorded action."""
    d = alert.get("detail") or {}
    reason = d.get("reason") or (d.get("reasons") or [[None]])[0][0]
    said = f"You told us about {str(reason).replace('_', ' ')}" if reason else "You told us your visit could be better"
    return f"{said}. {action.strip().rstrip('.')}."


def resolve(store: CentralStore, alert_id: str, by: str, root_cause: str, action: str, now: datetime, *,
            outcome: str | None = None, publish: bool = True, dispatcher: Dispatcher | None = None) -> dict[str, Any]:
    """Close the loop: why it happened and what was done, both required. Grouped alerts close with it."""
    who = _who(by)
    if not (root_cause or "").strip() or not (action or "").strip():
        raise InvalidTransition("resolving needs both a root cause (--root-cause) and the action taken (--action)")
    with store.db.transaction():
        alert = store.alert(alert_id)
        if alert["state"] == "resolved":
            raise InvalidTransition(f"alert {alert['id'][:8]} is already resolved by {alert['resolved_by']}")
        family = [alert] + [a for a in store.query("SELECT id, state FROM alerts WHERE parent_id = ? "
                                                   "AND state <> 'resolved'", (alert["id"],))]
        for a in family:
            store.db.execute("UPDATE alerts SET state = 'resolved', resolved_by = ?, resolved_at = ?, "
                             "root_cause = ?, action = ? WHERE id = ?",
                             (who, utc_iso(now), root_cause.strip(), action.strip(), a["id"]))
            store.audit(a["id"], who, "resolved", a["state"], "resolved", now,
                        {"root_cause": root_cause.strip(), "action": action.strip()}
                        if a is alert else {"with": alert["id"]})
        if publish and alert["kind"] in FEEDBACK_KINDS and alert.get("location"):
            text = (outcome or "").strip() or default_outcome(alert, action)
            store.add_outcome(alert["id"], alert["site"], alert["location"], {"en": text}, now)
        if dispatcher is not None:
            contacts = store.query("SELECT contact FROM ratings WHERE contact IS NOT NULL AND id IN "
                                   "(SELECT rating_id FROM alerts WHERE id = ? OR parent_id = ?)",
                                   (alert["id"], alert["id"]))
            for row in contacts:
                dispatcher.queue_followup(alert, row["contact"], (outcome or "").strip()
                                          or default_outcome(alert, action), now)
    return store.alert(alert["id"])


def auto_resolve(store: CentralStore, alert_id: str, why: str, now: datetime) -> dict[str, Any] | None:
    """Central closes a device-health alert whose condition cleared by itself; None if someone resolved it first.
    The audit says so, and a person can still reopen it with a root cause."""
    with store.db.transaction():
        alert = store.alert(alert_id)
        if alert["state"] == "resolved":
            return None
        store.db.execute("UPDATE alerts SET state = 'resolved', resolved_by = 'central', resolved_at = ?, "
                         "root_cause = ?, action = ? WHERE id = ? AND state <> 'resolved'",
                         (utc_iso(now), f"recovered by itself: {why}", "none needed", alert["id"]))
        store.audit(alert["id"], "central", "recovered", alert["state"], "resolved", now, {"why": why})
    return store.alert(alert_id)


def reopen(store: CentralStore, alert_id: str, by: str, why: str, now: datetime,
           dispatcher: Dispatcher | None = None) -> dict[str, Any]:
    """It came back (or the fix did not hold): open again, from the first level of the chain."""
    who = _who(by)
    if not (why or "").strip():
        raise InvalidTransition("say why it is reopened (--why)")
    with store.db.transaction():
        alert = store.alert(alert_id)
        if alert["state"] != "resolved":
            raise InvalidTransition(f"alert {alert['id'][:8]} is {alert['state']}; only a resolved alert can reopen")
        live = store.query("SELECT id FROM alerts WHERE kind = ? AND group_key = ? AND state <> 'resolved'",
                           (alert["kind"], alert["group_key"]))
        if live:
            raise InvalidTransition(f"alert {live[0]['id'][:8]} is already open for the same cause; work on that one")
        store.db.execute("UPDATE alerts SET state = 'open', reopened = reopened + 1, level = 0, escalated_at = NULL, "
                         "acked_by = NULL, acked_at = NULL, opened_at = opened_at WHERE id = ?", (alert["id"],))
        store.audit(alert["id"], who, "reopened", "resolved", "open", now, {"why": why.strip()})
        fresh = store.alert(alert["id"])
        if dispatcher is not None:
            dispatcher.queue(fresh, now, purpose=f"reopened-{fresh['reopened']}")
    return fresh
