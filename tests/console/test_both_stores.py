"""The console's own SQL (accounts, sessions, tokens, alert pages, the stream's cursor, dashboards) on SQLite
and on PostgreSQL: one walk through what a manager does."""

from __future__ import annotations

from datetime import timedelta

from central.accounts import Accounts
from central.console import create_app
from central.errors import LoginRefused
from central.store_console import AlertFilter, ConsoleReads
from tests.central.test_dashboard import load
from tests.console.conftest import PASSWORD, login
from tests.console.test_alert_pages import open_alert


def test_a_managers_day_on_either_store(any_console_store, clock):
    store = any_console_store
    app = create_app(store, clock=clock, secure_cookies=False)
    reads = ConsoleReads(store)
    start = reads.cursor()
    mine = open_alert(store, clock, site="store-1")
    open_alert(store, clock, site="store-2", key="theirs")
    changed, cursor = reads.changed_since(start, ("store-1",))
    assert [a["id"] for a, _ in changed] == [mine] and cursor > start
    rows, total = reads.alerts(AlertFilter(sites=("store-1",), state="live"), limit=10)
    assert total == 1 and rows[0]["id"] == mine
    anna = login(app, "anna")
    assert anna.act(f"/alerts/{mine}/ack").status_code == 303
    r = anna.post(f"/api/alerts/{mine}/resolve", json={"root_cause": "one till", "action": "two tills"},
                  headers={"X-CSRF-Token": anna.csrf})
    assert r.status_code == 200 and r.json()["state"] == "resolved"
    load(store)
    assert anna.get("/dashboard?start=2026-11-23&end=2026-11-24").status_code == 200
    token = Accounts(store, clock=clock).new_token("anna")
    assert anna.get("/api/alerts", headers={"Authorization": f"Bearer {token}"}).json()["total"] == 1
    anna.close()


def test_lockout_and_session_expiry_on_either_store(any_console_store, clock):
    accounts = Accounts(any_console_store, clock=clock)
    for _ in range(6):  # the fifth failure locks; the sixth attempt is refused as locked
        try:
            accounts.login("anna", "wrong password!", "10.0.0.1")
        except LoginRefused as e:
            last = e
    assert last.retry_after > 0
    clock.advance(31)
    session = accounts.login("anna", PASSWORD, "10.0.0.2")
    assert accounts.session(session.cookie) is not None
    clock.advance(timedelta(hours=12, seconds=1).total_seconds())
    assert accounts.session(session.cookie) is None
