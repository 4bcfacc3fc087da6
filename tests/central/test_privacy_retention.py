"""Privacy at central, on an injected clock: consent required beside a contact, the address never in a delivery
row, a log line or a group channel, and every trace of it gone after the retention periods."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest

from central import lifecycle
from central.errors import OrgError
from central.org import Org
from central.retention import Retention, RetentionTask
from central.service import CentralService
from central.store import CentralStore
from smileloop_core.clock import FakeClock, utc_iso
from smileloop_core.mqtt import BrokerSettings
from tests.central.conftest import ORG, TUESDAY_10

ADDRESS = "visitor@example.com"
COMMENT = "Ring mig på 070-123 45 67 eller mail anna at example dot com, jävla kö"
SECRETS = (ADDRESS, "visitor%40example.com", "070-123 45 67", "anna at example dot com", "jävla")
TABLES = ("ratings", "alerts", "alert_audit", "deliveries", "delivery_attempts", "rejected", "outcomes", "org_audit")
TOPIC = "smileloop/v1/store-1/kiosk-1/ratings"


def org_doc(**retention: int) -> dict[str, Any]:
    doc = json.loads(json.dumps(ORG))
    doc["sites"]["store-1"]["visitor_followup"] = "json://127.0.0.1:9/visitor?to={contact}"
    if retention:
        doc["retention"] = retention
    return doc


def message(*ratings: dict[str, Any]) -> bytes:
    return json.dumps({"v": 1, "device": "kiosk-1", "site": "store-1", "ratings": list(ratings)}).encode()


def rating(seq: int, clock: FakeClock, **extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "seq": seq, "ts": utc_iso(clock.now()), "scale": "smiley4", "value": 1,
            "location": "exit", "reason": None, **extra}


def consent(clock: FakeClock) -> dict[str, str]:
    return {"text": "contact-3f2a9c1e0b7d", "lang": "sv", "ts": utc_iso(clock.now())}


def dump(store: CentralStore) -> str:
    """Every row of every table holding feedback, alerts or deliveries, as one text to search."""
    return "\n".join(json.dumps(store.query(f"SELECT * FROM {t}"), ensure_ascii=False, default=str) for t in TABLES)


@pytest.fixture
def setup(store: CentralStore) -> tuple[CentralService, FakeClock, list[tuple[str, str, str]]]:
    clock = FakeClock(TUESDAY_10)
    store.put_document("org", org_doc(), clock.now())
    sent: list[tuple[str, str, str]] = []
    service = CentralService(store, BrokerSettings.from_url("mqtt://127.0.0.1:1"), clock=clock,
                             send=lambda url, title, body: sent.append((url, title, body)))
    return service, clock, sent


def test_a_contact_leaves_no_trace_after_retention_and_never_reaches_logs_or_channels(setup, caplog):
    service, clock, sent = setup
    store = service.store
    caplog.set_level(logging.DEBUG)
    with_contact = rating(1, clock, contact=ADDRESS, consent=consent(clock), comment=COMMENT)
    bad = rating(2, clock, value=9, contact=ADDRESS, consent=consent(clock))  # rejected: its payload is kept
    receipt = service.handle(TOPIC, message(with_contact, bad))
    assert receipt is not None and [with_contact["id"], 0] in receipt["stored"]
    service.handle("smileloop/v1/store-1/kiosk-9/ratings", message(rating(3, clock, contact=ADDRESS)))  # whole
    [row] = store.query("SELECT contact, consent, comment, comment_shown FROM ratings")
    assert row["contact"] == ADDRESS and json.loads(row["consent"])["lang"] == "sv"
    assert row["comment"] == COMMENT  # the original, for admins, until retention clears it
    assert row["comment_shown"] == "Ring mig på [phone] eller mail [e-mail], ***** kö"
    [alert] = store.alerts(state="live")
    assert alert["detail"]["comment"] == row["comment_shown"]

    service.dispatcher.run_due(clock.now())
    lifecycle.resolve(store, alert["id"], "anna", "one till", "We opened a second till", clock.now(),
                      dispatcher=service.dispatcher, org=Org.from_dict(org_doc()))
    service.dispatcher.run_due(clock.now())
    followups = [s for s in sent if s[0].startswith("json://127.0.0.1:9/visitor")]
    assert [u for u, _, _ in followups] == [f"json://127.0.0.1:9/visitor?to={ADDRESS}"]  # looked up when sending
    to_groups = [s for s in sent if s not in followups]
    assert to_groups and not any(secret in "".join(s) for s in to_groups for secret in SECRETS)
    assert store.query("SELECT url FROM deliveries WHERE purpose = 'followup'") == [
        {"url": f"followup:{with_contact['id']}"}]
    assert ADDRESS not in dump(store).replace(f'"contact": "{ADDRESS}"', "")  # only ratings.contact holds it

    clock.advance(2 * 3600)  # the follow-up is done: the address goes at the next purge, not after 65 days
    service.tick(clock.now())
    assert store.query("SELECT contact, consent FROM ratings") == [{"contact": None, "consent": None}]

    clock.advance(400 * 86400)
    service.tick(clock.now())
    text = dump(store)
    assert not [secret for secret in SECRETS if secret in text]
    assert store.count("rejected") == 0 and store.count("ratings") == 1  # the rating stays, anonymous
    assert "retention purge:" in caplog.text
    assert RetentionTask(store, clock).run(force=True).total == 0  # idempotent
    assert not [secret for secret in SECRETS if secret in caplog.text], "an address or a comment reached the log"


def test_contacts_go_after_the_organisations_period_without_a_follow_up(setup):
    service, clock, _ = setup
    store = service.store
    store.put_document("org", org_doc(contact_days=10), clock.now())
    service.handle(TOPIC, message(rating(1, clock, contact=ADDRESS, consent=consent(clock))))
    clock.advance(9 * 86400)
    assert service.retention.run(clock.now()).contacts == 0
    assert store.query("SELECT contact FROM ratings") == [{"contact": ADDRESS}]
    clock.advance(2 * 86400)
    assert service.retention.run(clock.now()).contacts == 1
    assert store.query("SELECT contact FROM ratings") == [{"contact": None}]
    assert service.retention.run(clock.now()) is None  # not due again within the hour


def test_a_contact_without_consent_is_dropped_with_a_reason_and_the_rating_kept(setup):
    service, clock, _ = setup
    store = service.store
    bare = rating(1, clock, contact=ADDRESS)
    wrong = rating(2, clock, contact="070-123 45 67", consent={"text": "v1", "lang": "sv"})
    receipt = service.handle(TOPIC, message(bare, wrong))
    assert receipt is not None
    assert sorted(receipt["stored"]) == sorted([[bare["id"], 0], [wrong["id"], 0]]) and receipt["rejected"] == []
    assert store.query("SELECT contact, consent FROM ratings") == [{"contact": None, "consent": None}] * 2
    reasons = {r["rating_id"]: r for r in store.query("SELECT rating_id, reason, raw FROM rejected")}
    assert "needs 'consent'" in reasons[bare["id"]]["reason"]
    assert "'consent' is not valid" in reasons[wrong["id"]]["reason"]
    assert all(ADDRESS not in r["raw"] and "070-123" not in r["raw"] for r in reasons.values())


def test_retention_periods_are_checked_with_the_org_tree():
    assert Retention.from_doc({"contact_days": 30}).contact_days == 30
    assert Retention.from_doc(None) == Retention()
    for bad in ({"contact_days": 0}, {"contacts": 5}, {"audit_days": "long"}, []):
        with pytest.raises(OrgError, match="retention"):
            Org.from_dict({**org_doc(), "retention": bad})
    clock = FakeClock(TUESDAY_10)
    assert (clock.now() + timedelta(days=Retention().contact_days)).year == 2027
