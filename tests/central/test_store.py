"""The store and the alert lifecycle, the same tests on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from central import lifecycle, rules
from central.errors import AlertNotFound, InvalidTransition
from central.rules import RuleBook
from central.schema import MIGRATIONS, migrate
from tests.central.conftest import rating


def test_migrations_apply_once(any_store):
    assert migrate(any_store.db) == []
    names = [r["name"] for r in any_store.query("SELECT name FROM _migrations ORDER BY name")]
    assert names == [name for name, _ in MIGRATIONS]


def test_each_rating_once_newer_rev_updates_follow_up_and_one_alert_per_rating(any_store, clock):
    rule = rules.rating_rule(RuleBook({"default": {"negative_rating": {"cooldown": 0}}}))
    r = rating(1, ts=clock.now())
    first = any_store.store_ratings("store-1", "kiosk-1", [r, rating(4, ts=clock.now(), seq=2)], clock.now(), rule)
    assert len(first.new) == 2 and len(first.alerts) == 1
    again = any_store.store_ratings("store-1", "kiosk-1", [r], clock.now(), rule)
    assert (again.new, again.duplicates, again.alerts) == ([], 1, [])
    from dataclasses import replace

    follow = replace(r, rev=1, reason="waiting_time", comment="20 min queue", contact="ann@example.com")
    upd = any_store.store_ratings("store-1", "kiosk-1", [follow], clock.now(), rule)
    assert len(upd.updated) == 1
    row = any_store.query("SELECT reason, comment, contact, rev FROM ratings WHERE id = ?", (r.id,))[0]
    assert row == {"reason": "waiting_time", "comment": "20 min queue", "contact": "ann@example.com", "rev": 1}
    assert any_store.count("ratings") == 2 and any_store.count("alerts") == 1


def test_lifecycle_with_audit_and_outcome(any_store, clock):
    batch = any_store.store_ratings("store-1", "kiosk-1", [rating(1, ts=clock.now(), reason="waiting_time")],
                                    clock.now(), rules.rating_rule(RuleBook()))
    alert_id = batch.alerts[0].alert["id"]
    with pytest.raises(InvalidTransition, match="only a resolved alert can reopen"):
        lifecycle.reopen(any_store, alert_id, "anna", "why not", clock.now())
    clock.advance(60)
    acked = lifecycle.acknowledge(any_store, alert_id[:8], "anna", clock.now())
    assert (acked["state"], acked["acked_by"]) == ("acknowledged", "anna")
    with pytest.raises(InvalidTransition, match="is acknowledged by anna"):
        lifecycle.acknowledge(any_store, alert_id, "bob", clock.now())
    with pytest.raises(InvalidTransition, match=r"root cause .* and the action"):
        lifecycle.resolve(any_store, alert_id, "anna", "queue", "  ", clock.now())
    clock.advance(600)
    done = lifecycle.resolve(any_store, alert_id, "anna", "one till open", "opened a second till", clock.now(),
                             outcome="You said the queue was long. We opened a second till.")
    assert (done["state"], done["root_cause"], done["action"]) == ("resolved", "one till open", "opened a second till")
    assert any_store.outcomes("store-1", "exit")[0]["text"] == {
        "en": "You said the queue was long. We opened a second till."}
    assert any_store.unpublished_outcome_locations() == [("store-1", "exit")]
    with pytest.raises(InvalidTransition, match="already resolved by anna"):
        lifecycle.resolve(any_store, alert_id, "bob", "x", "y", clock.now())
    back = lifecycle.reopen(any_store, alert_id, "cx-team", "queue long again", clock.now())
    assert (back["state"], back["reopened"], back["acked_by"]) == ("open", 1, None)
    trail = [(a["actor"], a["action"], a["from_state"], a["to_state"]) for a in any_store.audit_trail(alert_id)]
    assert trail == [("central", "opened", None, "open"), ("anna", "acknowledged", "open", "acknowledged"),
                     ("anna", "resolved", "acknowledged", "resolved"), ("cx-team", "reopened", "resolved", "open")]
    assert any_store.audit_trail(alert_id)[2]["note"] == {"root_cause": "one till open",
                                                          "action": "opened a second till"}
    with pytest.raises(AlertNotFound):
        any_store.alert("ffffffff")
    with pytest.raises(InvalidTransition, match="--by"):
        lifecycle.acknowledge(any_store, alert_id, " ", clock.now())


def test_resolving_the_first_closes_the_grouped_ones(any_store, clock):
    batch = any_store.store_ratings("store-1", "kiosk-1", [rating(1, ts=clock.now()) for _ in range(3)], clock.now(),
                                    rules.rating_rule(RuleBook()))
    head = batch.alerts[0].alert["id"]
    lifecycle.resolve(any_store, head, "anna", "spill at the door", "cleaned, sign up", clock.now())
    assert {a["state"] for a in any_store.alerts()} == {"resolved"}


def test_live_alert_is_unique_per_cause_even_if_raised_twice_at_once(any_store, clock):
    cand = rules.candidate("device_offline", "store-1", "exit", "Device kiosk-1 is offline", {},
                           group_key="store-1/kiosk-1", device_id="kiosk-1")
    first = any_store.open_alert(cand, clock.now())
    second = any_store.open_alert(cand, clock.now() + timedelta(seconds=5))
    assert (first.action, second.action) == ("opened", "repeated")
    with pytest.raises(Exception):  # noqa: B017 - the database itself refuses a second live alert
        any_store.db.execute("INSERT INTO alerts (id, kind, site, state, opened_at, title, group_key) "
                             "VALUES ('x', 'device_offline', 'store-1', 'open', 'now', 't', 'store-1/kiosk-1')")


def test_documents_are_versioned(any_store, clock):
    assert any_store.document("org") == ({}, 0)
    assert any_store.put_document("org", {"name": "Acme"}, clock.now()) == 1
    assert any_store.put_document("org", {"name": "Acme AB"}, clock.now()) == 2
    assert any_store.document("org") == ({"name": "Acme AB"}, 2)


def test_device_status_keeps_since_while_the_state_holds(any_store, clock):
    any_store.upsert_status("store-1", "kiosk-1", {"state": "offline", "backlog": 3}, "{}", clock.now())
    t0 = clock.now()
    clock.advance(60)
    any_store.upsert_status("store-1", "kiosk-1", {"state": "offline", "backlog": 4}, "{}", clock.now())
    [row] = any_store.statuses()
    assert row["backlog"] == 4 and row["since"] == any_store.statuses()[0]["since"]
    from smileloop_core.clock import utc_iso

    assert row["since"] == utc_iso(t0)


def test_the_visitors_follow_up_answer_completes_the_alert(store, clock):
    from dataclasses import replace

    r = rating(1, ts=clock.now())
    [alert] = store.store_ratings("store-1", "kiosk-1", [r], clock.now(), rules.rating_rule(RuleBook())).alerts
    alert = alert.alert
    assert alert["detail"]["reason"] is None
    clock.advance(8)
    store.store_ratings("store-1", "kiosk-1", [replace(r, rev=1, reason="staff", comment="nobody at the desk")],
                        clock.now(), rules.rating_rule(RuleBook()))
    fresh = store.alert(alert["id"])
    assert (fresh["detail"]["reason"], fresh["detail"]["comment"]) == ("staff", "nobody at the desk")
    assert store.audit_trail(alert["id"])[-1]["action"] == "follow-up"
    assert store.count("alerts") == 1


@pytest.mark.postgres
def test_postgres_connection_lost_between_transactions_is_opened_again(tmp_path):
    import psycopg

    from tests.central.conftest import PG_URL, make_store

    store = make_store("postgres", tmp_path)
    try:
        pid = store.db.scalar("SELECT pg_backend_pid() AS pid")
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            store.count("ratings")  # the statement that finds the connection dead fails (its message comes again)
        assert store.count("ratings") == 0  # the next one reconnects
        assert store.db.scalar("SELECT pg_backend_pid() AS pid") != pid
    finally:
        store.drop()
        store.close()
