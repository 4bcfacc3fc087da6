"""Routing with fallback up the org tree, and SLA escalation whose clocks pause outside opening hours."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from central import lifecycle, rules
from central.errors import OrgError
from central.org import Org
from central.rules import RuleBook
from central.service import CentralService
from smileloop_core.mqtt import BrokerSettings
from tests.central.conftest import ORG, rating


def test_fallback_routing_up_the_tree(org):
    assert [(lv.scope, [c.name for c in lv.contacts]) for lv in org.chain("store-1", "exit")] == [
        ("location", ["exit-lead"]), ("site", ["site-manager"]), ("org", ["cx-team"])]
    assert [lv.scope for lv in org.chain("store-1", "cafe")] == ["site", "org"]  # no one at the cafe
    assert [lv.scope for lv in org.chain("store-2", "x")] == ["org"]  # a site without people
    assert [lv.scope for lv in org.chain("unknown-site", None)] == ["org"]  # not in the tree yet
    assert org.level("store-1", "cafe", 0).name == "store-1"
    assert org.level("store-1", "cafe", 2) is None
    assert org.location_of("store-1", "kiosk-2") == "cafe"


@pytest.mark.parametrize(("patch", "message"), [
    ({"sites": {"store 1": {}}}, r"sites\.store 1: 'store 1' is not an identifier"),
    ({"sites": {"s": {"hours": {"timezone": "Mars/Olympus"}}}}, r"sites\.s: hours\.timezone"),
    ({"sites": {"s": {"contacts": [{"name": "a", "urls": ["nope"]}]}}}, r"sites\.s\.contacts\[0\]\.urls"),
    ({"sites": {"s": {"contacts": [{"name": "a", "quiet": "22-7"}]}}}, r"contacts\[0\]\.quiet: '22-7'"),
    ({"sites": {"s": {"locations": {"l": {"devicez": []}}}}}, r"sites\.s\.locations\.l\.devicez: unknown key"),
])
def test_org_errors_name_the_key(patch, message):
    with pytest.raises(OrgError, match=message):
        Org.from_dict(patch)


def offline_service(store, clock) -> CentralService:
    """The service's tick without a broker: escalation and deliveries are store work."""
    store.put_document("org", json.loads(json.dumps(ORG)), clock.now())
    return CentralService(store, BrokerSettings.from_url("mqtt://127.0.0.1:1"), clock=clock)


def open_negative(store, when: datetime, location: str = "exit") -> str:
    batch = store.store_ratings("store-1", "kiosk-1", [rating(1, ts=when, location=location)], when,
                                rules.rating_rule(RuleBook()))
    service_alert = batch.alerts[0].alert
    return str(service_alert["id"])


def urls_for(store, alert_id: str) -> list[str]:
    return [r["url"].rsplit("/", 1)[-1] for r in store.query(
        "SELECT url FROM deliveries WHERE alert_id = ? AND contact <> 'mqtt' ORDER BY created_at, purpose",
        (alert_id,))]


def test_escalation_waits_for_opening_hours(store, clock):
    service = offline_service(store, clock)
    opened = datetime(2026, 11, 24, 18, 50, tzinfo=UTC)  # 19:50 in Stockholm, closing at 20:00
    alert_id = open_negative(store, opened)
    service.dispatcher.queue(store.alert(alert_id), opened)
    assert urls_for(store, alert_id) == ["lead"]
    service.tick(opened + timedelta(hours=2), silence=False)  # 10 open minutes so far (ack SLA 15 min)
    service.tick(datetime(2026, 11, 25, 7, 4, tzinfo=UTC), silence=False)  # 08:04 next day: 14 open minutes
    assert store.alert(alert_id)["level"] == 0
    service.tick(datetime(2026, 11, 25, 7, 6, tzinfo=UTC), silence=False)  # 16 open minutes: up to the site
    alert = store.alert(alert_id)
    assert alert["level"] == 1 and urls_for(store, alert_id) == ["lead", "manager"]
    note = store.audit_trail(alert_id)[-1]
    assert note["action"] == "escalated" and note["note"]["to_level"] == 1
    # no broker here: the escalation message for the alerts topic waits, its failed attempt recorded
    [mqtt] = store.query("SELECT d.state, a.ok, a.error FROM deliveries d JOIN delivery_attempts a "
                         "ON a.delivery_id = d.id WHERE d.alert_id = ? AND d.purpose = 'mqtt-escalated-1'", (alert_id,))
    assert mqtt == {"state": "pending", "ok": 0, "error": "not connected to the broker"}
    service.tick(datetime(2026, 11, 25, 7, 20, tzinfo=UTC), silence=False)  # 14 more: not yet
    service.tick(datetime(2026, 11, 25, 7, 22, tzinfo=UTC), silence=False)  # the org's CX team
    assert store.alert(alert_id)["level"] == 2 and urls_for(store, alert_id) == ["lead", "manager", "cx"]
    service.tick(datetime(2026, 11, 26, 12, 0, tzinfo=UTC), silence=False)  # nowhere higher to go
    assert store.alert(alert_id)["level"] == 2


def test_acknowledged_alert_escalates_on_the_resolve_sla_and_a_resolved_one_never(store, clock):
    service = offline_service(store, clock)
    t0 = clock.now()
    first, second = open_negative(store, t0, "exit"), open_negative(store, t0, "cafe")
    lifecycle.acknowledge(store, first, "exit-lead", t0 + timedelta(minutes=5))
    lifecycle.acknowledge(store, second, "site-manager", t0 + timedelta(minutes=5))
    lifecycle.resolve(store, second, "site-manager", "wet floor", "mopped", t0 + timedelta(minutes=6))
    service.tick(t0 + timedelta(hours=4), silence=False)  # resolve SLA: 4 h of opening time after the ack
    assert store.alert(first)["level"] == 0
    service.tick(t0 + timedelta(hours=4, minutes=6), silence=False)
    assert store.alert(first)["level"] == 1 and store.alert(second)["level"] == 0


def test_cafe_alert_starts_at_the_site_because_the_cafe_has_no_contacts(store, clock):
    service = offline_service(store, clock)
    alert_id = open_negative(store, clock.now(), "cafe")
    service.dispatcher.queue(store.alert(alert_id), clock.now())
    assert urls_for(store, alert_id) == ["manager"]
    service.tick(clock.now() + timedelta(minutes=16), silence=False)
    assert urls_for(store, alert_id) == ["manager", "cx"]
