"""The fleet and organisation pages: devices from the kept statuses with silent and offline ones marked, scoped
per site; config pushes checked by the device's rules and kept with the pusher's name; org and rule edits through
OrgAdmin (validated, versioned, audited with the user's name), refused whole with a clear reason, admin-only."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest

from central.org_admin import OrgAdmin
from central.store import CentralStore
from central.store_fleet import PushLog
from smileloop_core import topics
from smileloop_core.clock import FakeClock
from tests.central.test_fleet import retained


def status(site: str, device: str, location: str, state: str = "online", **extra: Any) -> dict[str, Any]:
    return {"v": 1, "state": state, "device": device, "site": site, "location": location,
            "ts": "2026-11-24T09:59:00.000Z", "backlog": 3, "oldest_unsent": "2026-11-24T09:50:00.000Z",
            "disk_free_mb": 5120.4, "version": "0.1.0", "clock_offset": -0.412, "config_version": 2,
            "config": {"version": 2, "state": "applied", "reason": None}, **extra}


@pytest.fixture
def fleet(console_store: CentralStore, clock: FakeClock) -> CentralStore:
    """store-1: kiosk-1 online now, kiosk-2 online but last heard an hour ago (silent), kiosk-3 in the org tree
    and never heard from; store-2: kiosk-9 offline."""
    OrgAdmin(console_store, "test", clock=clock).add_device("store-1", "exit", "kiosk-3")
    now = clock.now()
    for site, device, location, state, at in (("store-1", "kiosk-1", "exit", "online", now),
                                              ("store-1", "kiosk-2", "cafe", "online", now - timedelta(hours=1)),
                                              ("store-2", "kiosk-9", "door", "offline", now)):
        body = status(site, device, location, state)
        console_store.upsert_status(site, device, body, json.dumps(body), at)
    return console_store


def row(html: str, site: str, device: str) -> str:
    found = re.search(rf'<tr id="device-{site}-{device}"[^>]*>', html)
    assert found, f"{site}/{device} is not on the page"
    return found.group(0)


def org_version(store: CentralStore) -> int:
    return store.document("org")[1]


# --- fleet --------------------------------------------------------------------------------------------------
def test_the_fleet_page_shows_every_device_with_silent_offline_and_never_seen_marked(fleet, as_user):
    page = as_user("admin").get("/fleet")
    assert page.status_code == 200
    assert 'data-state="online"' in row(page.text, "store-1", "kiosk-1")
    assert 'class="device stale" data-state="silent"' in row(page.text, "store-1", "kiosk-2")
    assert 'class="device never" data-state="never seen"' in row(page.text, "store-1", "kiosk-3")
    assert 'class="device dead" data-state="offline"' in row(page.text, "store-2", "kiosk-9")
    assert "0.1.0" in page.text and "5120" in page.text and "-0.412" in page.text
    only = as_user("admin").get("/fleet?site=store-1&state=silent").text
    assert "device-store-1-kiosk-2" in only and "device-store-1-kiosk-1" not in only
    part = as_user("admin").get("/fleet?site=store-2", headers={"HX-Request": "true", "HX-Target": "fleet-list"})
    assert part.text.startswith('<div id="fleet-list"') and "kiosk-9" in part.text and "kiosk-1" not in part.text


def test_a_manager_sees_only_their_sites_devices_and_no_push_form(fleet, as_user):
    bo = as_user("bo")
    page = bo.get("/fleet").text
    assert "device-store-2-kiosk-9" in page and "kiosk-1" not in page and 'action="/fleet/push' not in page
    assert bo.get("/fleet?site=store-1").status_code == 403
    anna = as_user("anna").get("/fleet").text
    assert "device-store-1-kiosk-1" in anna and "kiosk-9" not in anna


def test_a_push_the_device_would_refuse_shows_its_message_and_nothing_is_kept(fleet, as_user, monkeypatch):
    monkeypatch.setenv("SMILELOOP_BROKER", "mqtt://127.0.0.1:9")  # never reached: the check comes first
    admin = as_user("admin")
    for data, message in (({"scale": "stars"}, "survey.scale: &#39;stars&#39; is not one of smiley4"),
                          ({"mon": "25:00-26:00"}, "hours.mon: &#39;25:00-26:00&#39; must look like"),
                          ({"idle_reset": "soon"}, "survey.idle_reset: &#39;soon&#39; is not a number"),
                          ({"pin": "12ab", "pin_again": "12ab"}, "digits"),
                          ({}, "nothing to push")):
        refused = admin.act("/fleet/push", {"target": "store-1/exit", "do": "push", **data})
        assert refused.status_code == 400, data
        assert message in refused.text, (data, re.findall(r'id="push-error">([^<]*)', refused.text))
    assert 'value="25:00-26:00"' in admin.act("/fleet/push", {"target": "store-1", "mon": "25:00-26:00"}).text
    assert PushLog(fleet).pushes() == []


def test_only_an_admin_may_push_and_only_with_the_forms_token(fleet, as_user):
    for name in ("anna", "vera"):
        assert as_user(name).act("/fleet/push", {"target": "store-1", "scale": "nps"}).status_code == 403
    admin = as_user("admin")
    assert admin.post("/fleet/push", data={"target": "store-1", "scale": "nps"}).status_code == 403
    assert PushLog(fleet).pushes() == []


def test_without_a_broker_the_console_checks_a_push_but_sends_and_keeps_nothing(fleet, as_user, monkeypatch):
    monkeypatch.delenv("SMILELOOP_BROKER", raising=False)
    admin = as_user("admin")
    assert "no broker configured" in admin.get("/fleet").text
    checked = admin.act("/fleet/push", {"target": "store-1/exit", "scale": "nps", "do": "check"})
    assert checked.status_code == 200 and "version 3 would go to kiosk-1, kiosk-3" in checked.text
    refused = admin.act("/fleet/push", {"target": "store-1/exit", "scale": "nps", "do": "push"})
    assert refused.status_code == 400 and "no broker configured" in refused.text
    assert PushLog(fleet).pushes() == []


def test_a_push_is_kept_with_the_admins_name_and_retained_for_each_device(fleet, as_user, broker, monkeypatch):
    monkeypatch.setenv("SMILELOOP_BROKER", broker.url)
    admin = as_user("admin")
    done = admin.act("/fleet/push", {"target": "store-1/exit", "scale": "nps", "question": "en=How was it?\nsv=Hur?",
                                     "sun": "closed", "do": "push"})
    assert done.status_code == 303 and "pushed=3" in done.headers["location"]
    kept = PushLog(fleet).pushes(site="store-1")
    body = {"survey": {"scale": "nps", "question": {"en": "How was it?", "sv": "Hur?"}}, "hours": {"sun": "closed"}}
    assert [(p.device_id, p.version, p.body, p.pushed_by) for p in kept] == [
        ("kiosk-1", 3, body, "admin"), ("kiosk-3", 3, body, "admin")]
    held = retained(broker.port)
    assert sorted(held) == [topics.config("store-1", "kiosk-1"), topics.config("store-1", "kiosk-3")]
    assert json.loads(held[topics.config("store-1", "kiosk-3")]) == {"v": 1, "version": 3, "config": body}
    page = admin.get(done.headers["location"]).text
    assert "Config version 3 pushed to 2 device(s)." in page and "kiosk-1, kiosk-3" in page


def test_a_push_the_broker_does_not_take_is_kept_and_the_page_says_it_was_not_sent(fleet, as_user, monkeypatch):
    from smileloop_core.mosquitto import free_port

    monkeypatch.setenv("SMILELOOP_BROKER", f"mqtt://127.0.0.1:{free_port()}")
    failed = as_user("admin").act("/fleet/push", {"target": "store-1//kiosk-9", "scale": "nps"})
    assert failed.status_code == 400 and "no device &#39;kiosk-9&#39; at site &#39;store-1&#39;" in failed.text
    failed = as_user("admin").act("/fleet/push", {"target": "store-1/cafe/kiosk-2", "scale": "nps"})
    assert failed.status_code == 503
    assert "config version 3 was kept but not sent: cannot reach the broker" in failed.text
    assert [(p.device_id, p.version) for p in PushLog(fleet).pushes()] == [("kiosk-2", 3)]


# --- organisation ---------------------------------------------------------------------------------------------
def test_everyone_sees_the_organisation_of_their_sites_and_never_a_contact_url(console_store, as_user):
    admin = as_user("admin").get("/org").text
    assert "site-store-1" in admin and "site-store-2" in admin and "exit-lead" in admin and "cx-team" in admin
    assert "Europe/Stockholm" in admin and "10:00-16:00" in admin and 'action="/org/rules#rules-form"' in admin
    assert "127.0.0.1:9" not in admin and "1 channel" in admin
    bo = as_user("bo").get("/org").text
    assert "site-store-2" in bo and "site-store-1" not in bo and "exit-lead" not in bo and "cx-team" in bo
    assert 'action="/org/' not in bo and "csrf_token" not in bo.split("<main>")[1]


def test_an_admins_edits_land_in_the_org_document_and_the_audit_with_their_name(console_store, as_user):
    admin = as_user("admin")
    steps = [("/org/sites", {"site": "store-3", "name": "Store 3", "timezone": "Europe/Oslo", "language": "sv"}),
             ("/org/sites/store-3/hours", {"mon": "08:00-20:00", "sat": "10:00-12:00, 13:00-16:00", "sun": "closed"}),
             ("/org/locations", {"site": "store-3", "location": "exit", "name": "Exit"}),
             ("/org/contacts", {"scope": "store-3/exit", "name": "lead", "urls": "json://127.0.0.1:9/a\n\nmailto://x@y",
                                "digest": "15", "quiet": "22:00-07:00"}),
             ("/org/devices/state", {"site": "store-1", "device": "kiosk-2", "state": "inactive"}),
             ("/org/sites", {"site": "store-3", "name": "Store three", "timezone": "Europe/Stockholm"})]
    for path, data in steps:
        r = admin.act(path, data)
        assert r.status_code == 303, (path, r.text[-500:])
    doc = console_store.document("org")[0]
    s3 = doc["sites"]["store-3"]
    assert (s3["name"], s3["timezone"], s3["language"]) == ("Store three", "Europe/Stockholm", "sv")
    assert s3["hours"] == {"mon": "08:00-20:00", "sat": ["10:00-12:00", "13:00-16:00"], "sun": "closed"}, \
        "changing the site kept its hours"
    assert s3["locations"]["exit"]["contacts"] == [{"name": "lead", "urls": ["json://127.0.0.1:9/a", "mailto://x@y"],
                                                     "digest": 15, "kudos": True, "quiet": "22:00-07:00"}]
    assert doc["lifecycle"]["store-1/kiosk-2"] == "inactive"
    audit = console_store.org_audit_entries(10)
    assert [(e["actor"], e["action"], e["target"]) for e in reversed(audit[:6])] == [
        ("admin", "site.set", "store-3"), ("admin", "site.hours", "store-3"), ("admin", "location.add", "store-3/exit"),
        ("admin", "contact.set", "store-3/exit:lead"), ("admin", "device.add", "store-1/kiosk-2"),
        ("admin", "site.set", "store-3")]
    page = admin.get("/org?saved=org&version=7").text
    assert "Saved: organisation version 7." in page and "127.0.0.1:9" not in page and "x@y" not in page
    assert "2 channels" in page and "site.hours" in page


def test_hours_keep_a_time_zone_written_inside_the_hours_table(console_store, as_user):
    assert as_user("admin").act("/org/sites/store-1/hours", {"mon": "09:00-17:00"}).status_code == 303
    hours = console_store.document("org")[0]["sites"]["store-1"]["hours"]
    assert hours == {"mon": "09:00-17:00", "timezone": "Europe/Stockholm"}


def test_rules_are_edited_as_toml_or_json_and_audited(console_store, as_user):
    admin = as_user("admin")
    r = admin.act("/org/rules", {"rules": "[default.negative_rating]\ncooldown = 600\n\n[store-1.burst]\ntaps = 5\n"})
    assert r.status_code == 303
    assert console_store.document("rules")[0] == {"default": {"negative_rating": {"cooldown": 600}},
                                                  "store-1": {"burst": {"taps": 5}}}
    assert admin.act("/org/rules", {"rules": '{"default": {"silence": {"factor": "3"}}}'}).status_code == 303
    assert console_store.document("rules")[0] == {"default": {"silence": {"factor": 3.0}}}
    assert [(e["actor"], e["action"]) for e in console_store.org_audit_entries(2)] == [("admin", "rules.set")] * 2
    assert "factor = 3.0" in admin.get("/org").text


@pytest.mark.parametrize(("path", "data", "message"), [
    ("/org/sites", {"site": "store-4", "timezone": "Mars/Olympus"}, "&#39;Mars/Olympus&#39; is not a known IANA"),
    ("/org/sites", {"site": "bad id!", "timezone": "UTC"}, "site &#39;bad id!&#39; is not a valid identifier"),
    ("/org/sites", {"site": "store-4", "timezone": "UTC", "language": "xx"}, "language &#39;xx&#39; is not one"),
    ("/org/sites/store-1/hours", {"mon": "8-20"}, "sites.store-1.hours.mon: &#39;8-20&#39; must look like"),
    ("/org/sites/store-9/hours", {"mon": "closed"}, "site &#39;store-9&#39; is not in the organisation"),
    ("/org/locations", {"site": "store-1", "location": "no/slash"}, "location &#39;no/slash&#39; is not a valid"),
    ("/org/contacts", {"scope": "org", "name": "x", "urls": "not a url"}, "urls: must be a list of apprise URLs"),
    ("/org/contacts", {"scope": "org", "name": "x", "urls": "json://h/x", "digest": "often"}, "digest: &#39;often"),
    ("/org/contacts", {"scope": "org", "name": "x", "urls": "json://h/x", "quiet": "late"}, "quiet: &#39;late&#39;"),
    ("/org/devices/state", {"site": "store-1", "device": "kiosk-1", "state": "gone"}, "&#39;gone&#39; is not one of"),
    ("/org/rules", {"rules": "[default.burst]\ntaps = -1\n"}, "default.burst.taps: must be a number ≥ 0"),
    ("/org/rules", {"rules": "[default.nope]\n"}, "default.nope: unknown rule"),
    ("/org/rules", {"rules": "[default\n"}, "rules: not valid TOML"),
])
def test_bad_input_gives_a_clear_reason_and_changes_nothing(console_store, as_user, path, data, message):
    before = (console_store.document("org"), console_store.document("rules"), console_store.org_audit_entries())
    refused = as_user("admin").act(path, data)
    assert refused.status_code == 400
    assert "Nothing was changed." in refused.text and message in refused.text, \
        re.findall(r'role="alert"[^>]*>([^<]*)', refused.text)
    assert (console_store.document("org"), console_store.document("rules"), console_store.org_audit_entries()) == before


def test_only_an_admin_may_change_the_organisation_and_only_with_the_forms_token(console_store, as_user):
    before = org_version(console_store)
    posts = [("/org/sites", {"site": "store-1", "timezone": "UTC"}), ("/org/sites/store-1/hours", {"mon": "closed"}),
             ("/org/locations", {"site": "store-1", "location": "x"}),
             ("/org/contacts", {"scope": "store-1", "name": "x", "urls": "json://h/x"}),
             ("/org/devices/state", {"site": "store-1", "device": "kiosk-1", "state": "retired"}),
             ("/org/rules", {"rules": ""})]
    anna, vera, admin = as_user("anna"), as_user("vera"), as_user("admin")
    for path, data in posts:
        assert anna.act(path, data).status_code == 403, path
        assert vera.act(path, data).status_code == 403, path
        assert admin.post(path, data=data).status_code == 403, path
    assert org_version(console_store) == before and console_store.document("rules")[1] == 0
    assert 'action="/org/' not in anna.get("/org").text
