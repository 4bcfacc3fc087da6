"""Data subject requests on SQLite and PostgreSQL: export lists every place an address is held, erase leaves it
nowhere (every column of every table searched), audited by a hash; the devices' requests are left for them."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from central import privacy, rules
from central.privacy import PLACES, Subject
from central.rules import RuleBook
from central.store import CentralStore
from central.store_backup import table_counts
from central.store_privacy import PrivacyStore, scrub_json
from smileloop.cli import main
from tests.central.conftest import rating

ADDRESS = "Anna.Berg@example.com"  # as the visitor gives it at the desk; stored in other cases below
RULE = rules.rating_rule(RuleBook({"default": {"negative_rating": {"cooldown": 0}}}))


def seed(store: CentralStore, clock) -> dict[str, str]:
    """The address in every place it can be: a contact, a comment, an alert's detail, a follow-up answer in the
    alert audit, a follow-up delivery and its failed attempt, a staff digest quoting it, a rejected message."""
    now = clock.now()
    mine = rating(1, ts=now, contact="anna.berg@example.com", comment="the queue")
    wrote = rating(2, ts=now, seq=2, comment="mail me at ANNA.BERG@example.com please")
    other = rating(1, ts=now, seq=3, contact="bo@example.com", comment="too slow")
    batch = store.store_ratings("store-1", "kiosk-1", [mine, other], now, RULE)
    store.store_ratings("store-1", "kiosk-2", [wrote], now, RULE)
    clock.advance(30)  # the visitor's follow-up answer: alert detail and audit note carry it
    store.store_ratings("store-1", "kiosk-1", [replace(mine, rev=1, comment="reach me: anna.berg@example.com")],
                        clock.now(), RULE)
    alert_id = next(o.alert["id"] for o in batch.alerts if o.alert["rating_id"] == mine.id)
    store.queue_delivery(alert_id, "followup", "visitor", "mailto://anna.berg@example.com", "pending", now, now,
                         body="We opened a second till.")
    store.queue_delivery(alert_id, "alert", "cx-team", "json://127.0.0.1:9/cx", "pending", now, now,
                         body="Comment: reach me: anna.berg@example.com")
    followup = store.query("SELECT id FROM deliveries WHERE purpose = 'followup'")[0]["id"]
    store.delivery_failed(followup, 1, now, "mailto://anna.berg@example.com: mailbox full",
                          retry_at=now + timedelta(minutes=5))
    store.reject("smileloop/v1/store-1/kiosk-9/ratings", b'{"v": 1, "ratings": [{"contact": "anna.berg@example'
                 b'.com"', "not JSON", now)
    return {"mine": mine.id, "wrote": wrote.id, "other": other.id, "alert": alert_id}


def everything(store: CentralStore) -> str:
    """Every column of every table, as one lower-case text."""
    return json.dumps([store.query(f"SELECT * FROM {t}") for t in table_counts(store)], default=str).lower()


def test_export_lists_every_place_before_and_none_after_erasure(store, clock):
    ids = seed(store, clock)
    subject = Subject(contact=ADDRESS)
    before = privacy.export(store, subject, clock.now(), "dpo")
    assert {p: n > 0 for p, n in before["rows"].items()} == {p: True for p in PLACES}, before["rows"]
    assert {r["id"] for r in before["places"]["ratings"]} == {ids["mine"], ids["wrote"]}
    assert ADDRESS.lower() in everything(store)

    done = privacy.erase(store, subject, clock.now(), "dpo")
    assert done.rows == before["rows"]
    assert sorted((r.device_id, r.rating_ids) for r in done.requests) == [
        ("kiosk-1", (ids["mine"],)), ("kiosk-2", (ids["wrote"],))]

    after = privacy.export(store, subject, clock.now(), "dpo")
    assert after["total"] == 0 and all(rows == [] for rows in after["places"].values())
    assert "anna.berg" not in everything(store), "the address is left somewhere"
    kept = store.query("SELECT contact, comment FROM ratings WHERE id = ?", (ids["other"],))[0]
    assert kept == {"contact": "bo@example.com", "comment": "too slow"}, "another visitor's details are kept"
    assert store.count("ratings") == 3 and store.count("alerts") >= 2, "the ratings themselves stay (no details)"
    states = {r["purpose"]: r["state"] for r in store.query("SELECT purpose, state FROM deliveries")}
    assert states["followup"] == "erased", "a follow-up not yet sent is never sent"

    audit = PrivacyStore(store).audit_entries()
    assert [(a["action"], a["actor"]) for a in audit] == [("export", "dpo"), ("erase", "dpo"), ("export", "dpo")]
    assert {a["subject"] for a in audit} == {subject.key} and subject.key.startswith("contact:sha256:")
    assert Subject(contact="  anna.berg@EXAMPLE.com ").key == subject.key, "the hash answers 'was I erased?'"
    assert audit[1]["detail"]["rows"] == before["rows"]


def test_erasing_one_rating_leaves_the_visitors_other_ratings(store, clock):
    now = clock.now()
    first, second = rating(1, ts=now, contact="c@example.com", comment="x1 y2"), rating(4, ts=now, seq=2,
                                                                                        contact="c@example.com")
    store.store_ratings("store-1", "kiosk-1", [first, second], now, RULE)
    held = privacy.export(store, Subject(rating_id=first.id), now, "dpo")
    assert [r["id"] for r in held["places"]["ratings"]] == [first.id] and held["rows"]["alerts"] == 1
    done = privacy.erase(store, Subject(rating_id=first.id), now, "dpo")
    assert [r.rating_ids for r in done.requests] == [(first.id,)]
    rows = {r["id"]: (r["contact"], r["comment"]) for r in store.query("SELECT id, contact, comment FROM ratings")}
    assert rows == {first.id: (None, None), second.id: ("c@example.com", None)}
    detail = store.query("SELECT detail FROM alerts WHERE rating_id = ?", (first.id,))[0]["detail"]
    assert json.loads(detail)["comment"] is None


def test_device_reports_mark_requests_done(store, clock):
    ids = seed(store, clock)
    done = privacy.erase(store, Subject(contact=ADDRESS), clock.now(), "dpo")
    messages = privacy.erase_messages(store, [("store-1", "kiosk-1"), ("store-1", "kiosk-2")])
    assert json.loads(messages["smileloop/v1/store-1/kiosk-1/erase"])["requests"][0]["ratings"] == [ids["mine"]]
    k1 = next(r for r in done.requests if r.device_id == "kiosk-1")
    store.upsert_status("store-1", "kiosk-1", {"state": "online"},
                        json.dumps({"v": 1, "state": "online", "erase": {"done": [k1.id], "erased": 1}}), clock.now())
    assert [r.id for r in privacy.reconcile(store, clock.now())] == [k1.id]
    left = PrivacyStore(store).requests(pending=True)
    assert [r.device_id for r in left] == ["kiosk-2"]
    assert list(privacy.erase_messages(store, [("store-1", "kiosk-1"), ("store-1", "kiosk-2")])) == [
        "smileloop/v1/store-1/kiosk-2/erase"], "a device done is not asked again"


def test_scrub_json_empties_details_of_named_ratings_in_a_raw_message():
    raw = json.dumps({"v": 1, "ratings": [{"id": "a", "contact": "x@y.z", "comment": "hi"},
                                          {"id": "b", "comment": "ok"}]})
    out = json.loads(scrub_json(raw, [], ids={"a"}) or "")
    assert out["ratings"] == [{"id": "a", "contact": None, "comment": None}, {"id": "b", "comment": "ok"}]
    assert scrub_json("to X@Y.z now", ["x@y.z"]) == "to [erased] now"


def test_a_request_needs_one_subject_of_some_length():
    with pytest.raises(ValueError):
        Subject()
    with pytest.raises(ValueError):
        Subject(contact="a")


def test_cli_export_then_erase_without_devices_then_audit(tmp_path, clock, capsys):
    db = tmp_path / "central.db"
    store = CentralStore(db)
    seed(store, clock)
    store.close()
    assert main(["privacy", "export", "--db", str(db), "--contact", ADDRESS, "--by", "dpo"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["rows"]["ratings"] == 2
    assert main(["privacy", "erase", "--db", str(db), "--contact", ADDRESS, "--no-push", "--json"]) == 0
    erased = json.loads(capsys.readouterr().out)
    assert erased["rows"] == exported["rows"] and sorted(erased["devices_pending"]) == ["kiosk-1", "kiosk-2"]
    assert main(["privacy", "audit", "--db", str(db), "--json"]) == 0
    assert "anna" not in capsys.readouterr().out.lower()
    assert main(["privacy", "export", "--db", str(db)]) == 2, "neither --contact nor --rating"
