"""Delivery through apprise to a local HTTP receiver: retries with every attempt recorded, quiet hours,
digests, and the visitor's follow-up after a resolve."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from central import lifecycle, rules
from central.notify import Dispatcher, alert_text, deliveries_of
from central.org import Org
from central.rules import RuleBook
from tests.central.conftest import rating


def org_with(receiver, **contact) -> Org:
    person = {"name": "anna", "urls": [receiver.url("anna")], **contact}
    return Org.from_dict({"sites": {"store-1": {
        "hours": {"timezone": "Europe/Stockholm"}, "contacts": [person],
        "visitor_followup": f"json://127.0.0.1:{receiver.port}/visitor?to={{contact}}"}}})


def negative(store, when, **kw):
    batch = store.store_ratings("store-1", "kiosk-1", [rating(1, ts=when, **kw)], when,
                                rules.rating_rule(RuleBook({"default": {"negative_rating": {"cooldown": 0}}})))
    return batch.alerts[0].alert


def test_failed_delivery_is_retried_and_every_attempt_recorded(store, clock, receiver):
    org = org_with(receiver)
    d = Dispatcher(store, lambda: org, retry_base=30)
    alert = negative(store, clock.now(), reason="staff", comment="rude at the till")
    assert d.queue(alert, clock.now()) == 1
    assert d.queue(alert, clock.now()) == 0  # queued once, however often it is asked
    receiver.fail = 2
    t0 = clock.now()
    assert d.run_due(t0) == 0
    assert d.run_due(t0 + timedelta(seconds=29)) == 0  # not due yet
    assert d.run_due(t0 + timedelta(seconds=30)) == 0  # second failure; next try 60 s later
    assert d.run_due(t0 + timedelta(seconds=91)) == 1
    [delivery] = deliveries_of(store, alert["id"])
    assert (delivery["state"], delivery["attempts"]) == ("sent", 3)
    assert [t["ok"] for t in delivery["tries"]] == [0, 0, 1] and delivery["tries"][0]["error"]
    assert delivery["url"] == f"json://127.0.0.1:{receiver.port}/…"  # no secrets in listings
    [req] = receiver.requests
    assert req["path"] == "/anna" and req["body"]["title"] == "Unhappy visitor at store-1 / exit"
    assert "Comment: rude at the till" in req["body"]["message"]
    assert store.alert(alert["id"])["notified_at"] is not None


def test_delivery_gives_up_after_max_attempts(store, clock, receiver):
    org = org_with(receiver)
    d = Dispatcher(store, lambda: org, max_attempts=2, retry_base=1)
    alert = negative(store, clock.now())
    d.queue(alert, clock.now())
    receiver.fail = 5
    d.run_due(clock.now())
    d.run_due(clock.now() + timedelta(seconds=2))
    d.run_due(clock.now() + timedelta(hours=1))
    [delivery] = deliveries_of(store, alert["id"])
    assert (delivery["state"], delivery["attempts"], len(delivery["tries"])) == ("failed", 2, 2)
    assert store.alert(alert["id"])["notified_at"] is None


def test_quiet_hours_hold_delivery_until_they_end(store, receiver):
    org = org_with(receiver, quiet="22:00-07:00")
    d = Dispatcher(store, lambda: org)
    late = datetime(2026, 11, 24, 22, 30, tzinfo=UTC)  # 23:30 in Stockholm
    d.queue(negative(store, late), late)
    assert d.run_due(datetime(2026, 11, 25, 5, 59, tzinfo=UTC)) == 0  # 06:59
    assert d.run_due(datetime(2026, 11, 25, 6, 0, tzinfo=UTC)) == 1  # 07:00
    assert len(receiver.requests) == 1


def test_digest_collects_alerts_into_one_message(store, clock, receiver):
    org = org_with(receiver, digest=60)
    d = Dispatcher(store, lambda: org)
    t0 = clock.now()
    ids = []
    for minute in (0, 10, 20):
        a = negative(store, t0 + timedelta(minutes=minute))
        ids.append(a["id"])
        d.queue(a, t0 + timedelta(minutes=minute))
    assert d.run_due(t0 + timedelta(minutes=59)) == 0
    assert d.run_due(t0 + timedelta(minutes=60)) == 1
    [req] = receiver.requests
    assert req["body"]["title"] == "smileloop digest: 3 alerts"
    assert req["body"]["message"].count("Unhappy visitor at store-1 / exit") == 3
    assert all(store.alert(i)["notified_at"] for i in ids)
    assert deliveries_of(store, ids[0])[-1]["purpose"] == "digest"


def test_resolve_follows_up_with_the_visitor_who_left_contact_details(store, clock, receiver):
    org = org_with(receiver)
    d = Dispatcher(store, lambda: org)
    alert = negative(store, clock.now(), reason="waiting_time", contact="ann@example.com")
    lifecycle.resolve(store, alert["id"], "anna", "one till", "We opened a second till", clock.now(), dispatcher=d)
    d.run_due(clock.now())
    [req] = receiver.requests
    assert req["path"].startswith("/visitor")
    assert req["body"]["title"] == "Thank you for your feedback"
    assert req["body"]["message"] == "You told us about waiting time: We opened a second till."
    other = negative(store, clock.now())  # no contact left: nobody to follow up with
    lifecycle.resolve(store, other["id"], "anna", "x", "y", clock.now(), dispatcher=d)
    assert store.count("deliveries") == 1


def test_kudos_go_only_to_contacts_who_want_them(store, clock, receiver):
    org = org_with(receiver, kudos=False)
    d = Dispatcher(store, lambda: org)
    cand = rules.candidate("happy_streak", "store-1", "exit", "20 happy visitors in a row!", {"run": 20},
                           group_key="store-1/exit/2026-11-24")
    opened = store.open_alert(cand, clock.now())
    assert d.queue(opened.alert, clock.now()) == 0
    _title, body = alert_text(opened.alert)
    assert body.endswith("Well done, team!")


def test_alert_text_is_what_the_manager_reads():
    alert = {"id": "3f2a9c1e-0000", "site": "store-1", "location": "exit", "title": "Unhappy visitor at store-1 / exit",
             "detail": {"value": 1, "scale": "smiley4", "reason": "waiting_time", "rating_ts": "2026-11-24T09:15:02Z"}}
    title, body = alert_text(alert)
    assert title == "Unhappy visitor at store-1 / exit"
    assert body.splitlines() == ["store-1 / exit", "Rating: 1 on smiley4", "Reason: Waiting time",
                                 "At: 2026-11-24T09:15:02Z", "Seen it: smileloop alerts ack 3f2a9c1e --by <you>"]
    assert alert_text(alert, "escalation-1")[0].startswith("Not yet handled: ")
    assert json.dumps(alert_text(alert, "reopened-1")).startswith('["Back again: ')
