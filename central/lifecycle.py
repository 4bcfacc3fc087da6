"""The alert lifecycle: open → acknowledged (by whom) → resolved (root cause and action, both required) →
reopened if it comes back. Every change is one transaction with its row in ``alert_audit``.

Resolving a feedback alert also records a "you said, we did" item for the location's kiosks (the service
publishes it, retained) and, when the visitor left contact details with consent, queues a follow-up to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from central.errors import InvalidTransition, OrgError
from central.notify import Dispatcher
from central.org import Org
from central.records import Alert
from central.rulebook import FEEDBACK_KINDS
from central.store import CentralStore
from central.texts import Texts, outcome_languages
from smileloop_core.i18n import SOURCE_LANGUAGE


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


def assign(store: CentralStore, alert_id: str, by: str, assignee: str | None, now: datetime) -> Alert:
    """Name who should act on a live alert (None: nobody); the audit records who assigned whom."""
    who = _who(by)
    target = (assignee or "").strip() or None
    with store.transaction():
        alert = store.alert(alert_id)
        if alert["state"] == "resolved":
            raise InvalidTransition(f"alert {alert['id'][:8]} is resolved; reopen it before assigning it")
        if alert.get("assignee") == target:
            return alert
        store.set_assignee(alert["id"], target)
        store.audit(alert["id"], who, "assigned" if target else "unassigned", alert["state"], alert["state"], now,
                    {"to": target, "from": alert.get("assignee")})
    return store.alert(alert["id"])


def default_outcome(alert: Alert, action: str, lang: str = SOURCE_LANGUAGE) -> str:
    """"You said …, we did …" in ``lang`` from the alert's reason (its label) and the action as typed."""
    return Texts(lang).outcome(alert, action)


def outcome_texts(alert: Alert, action: str, site_language: str, *, outcome: str | None = None,
                  actions: Mapping[str, str] | None = None) -> dict[str, str]:
    """The "you said, we did" item per language: composed in the site's language and every language with a
    catalogue (``actions`` may give the action in a language, else the typed one is used in every sentence);
    a worded ``outcome`` is kept as typed, under the site's language (kiosks in another language fall back to it)."""
    if (outcome or "").strip():
        return {site_language: str(outcome).strip()}
    return {lang: default_outcome(alert, (actions or {}).get(lang) or action, lang)
            for lang in outcome_languages(site_language)}


def resolve(store: CentralStore, alert_id: str, by: str, root_cause: str, action: str, now: datetime, *,
            outcome: str | None = None, publish: bool = True, dispatcher: Dispatcher | None = None,
            actions: Mapping[str, str] | None = None, org: Org | None = None) -> Alert:
    """Close the loop: why it happened and what was done, both required. Grouped alerts close with it.

    The "you said, we did" item and the visitor's follow-up speak the site's language (the org tree: ``org``,
    else the dispatcher's, else the stored one); ``actions`` optionally words the action per language."""
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
        language = _site_language(store, alert["site"], org or (dispatcher.org() if dispatcher else None))
        texts = outcome_texts(alert, action, language, outcome=outcome, actions=actions)
        if publish and alert["kind"] in FEEDBACK_KINDS and location:
            store.add_outcome(alert["id"], alert["site"], location, texts, now)
        if dispatcher is not None:
            for contact in store.followup_contacts(alert["id"]):
                dispatcher.queue_followup(alert, contact, texts[language], now)
    return store.alert(alert["id"])


def _site_language(store: CentralStore, site: str, org: Org | None) -> str:
    if org is None:
        try:
            org = Org.from_dict(store.document("org")[0])
        except OrgError:  # a tree the service refuses too: speak English rather than fail the resolve
            return SOURCE_LANGUAGE
    return org.site(site).language


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
