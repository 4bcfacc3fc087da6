"""The alert pages and API on a store with alerts: lifecycle through forms, scoping per site, the live stream."""

from __future__ import annotations

from central.records import Candidate
from central.store import CentralStore
from smileloop_core.clock import FakeClock


def open_alert(store: CentralStore, clock: FakeClock, site: str = "store-1", location: str = "exit",
               key: str = "k1") -> str:
    c = Candidate(kind="negative_share", site=site, location=location, group_key=f"{site}/{location}/{key}",
                  title=f"Long queue at {location}", detail={"negatives": 5})
    return store.open_alert(c, clock.now()).alert["id"]


def test_a_manager_works_an_alert_of_their_site_through_the_forms(console_store, clock, as_user):
    alert = open_alert(console_store, clock)
    anna = as_user("anna")
    page = anna.get("/alerts")
    assert alert in page.text and "Long queue at exit" in page.text
    assert anna.act(f"/alerts/{alert}/ack").status_code == 303
    assert anna.act(f"/alerts/{alert}/assign", {"assignee": "anna"}).status_code == 303
    refused = anna.act(f"/alerts/{alert}/resolve", {"root_cause": "", "action": "opened till 2"})
    assert refused.status_code == 400 and "root cause" in refused.text
    done = anna.act(f"/alerts/{alert}/resolve", {"root_cause": "one till open", "action": "opened till 2",
                                                 "tell_kiosks": "on"})
    assert done.status_code == 303
    a = console_store.alert(alert)
    assert (a["state"], a["acked_by"], a["resolved_by"], a["assignee"]) == ("resolved", "anna", "anna", "anna")
    assert [e["action"] for e in console_store.audit_trail(alert)] == ["opened", "acknowledged", "assigned", "resolved"]
    assert console_store.unpublished_outcome_locations() == [("store-1", "exit")]


def test_another_sites_manager_and_a_viewer_cannot_see_or_act(console_store, clock, as_user):
    alert = open_alert(console_store, clock)
    bo, vera = as_user("bo"), as_user("vera")
    assert alert not in bo.get("/alerts").text
    assert bo.get(f"/alerts/{alert}").status_code == 403
    assert bo.get(f"/api/alerts/{alert}").status_code == 403
    assert bo.get("/api/alerts").json()["total"] == 0
    assert bo.get("/api/alerts?site=store-1").status_code == 403
    assert bo.act(f"/alerts/{alert}/ack").status_code == 403
    assert vera.get(f"/alerts/{alert}").status_code == 200
    assert vera.act(f"/alerts/{alert}/ack").status_code == 403
    assert console_store.alert(alert)["state"] == "open"


def test_the_api_works_with_a_bearer_token_and_paginates(console_store, clock, app):
    from fastapi.testclient import TestClient

    from central.accounts import Accounts

    for i in range(7):
        open_alert(console_store, clock, key=f"k{i}")
    token = Accounts(console_store, clock=clock).new_token("anna")
    with TestClient(app) as c:
        auth = {"Authorization": f"Bearer {token}"}
        first = c.get("/api/alerts?limit=5", headers=auth).json()
        assert (first["total"], len(first["items"]), first["next_offset"]) == (7, 5, 5)
        rest = c.get("/api/alerts?limit=5&offset=5", headers=auth).json()
        assert len(rest["items"]) == 2 and rest["next_offset"] is None
        one = first["items"][0]["id"]
        r = c.post(f"/api/alerts/{one}/resolve", json={"root_cause": "x", "action": "y"}, headers=auth)
        assert r.status_code == 200 and r.json()["resolved_by"] == "anna"
        assert c.get("/api/alerts", headers={"Authorization": "Bearer slt_nope_nope"}).status_code in (401, 403)
        bad = c.get("/api/alerts?from=2026-13-01", headers=auth)
        assert bad.status_code == 400 and "from" in bad.json()["error"]
