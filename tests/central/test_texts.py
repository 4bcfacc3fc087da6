"""Alert, follow-up and outcome texts checked in Swedish and English: the site's `language` in the org tree picks
the catalogue, reasons read as the kiosk's labels, times are the site's clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from central import lifecycle, rules
from central.notify import Dispatcher, alert_text
from central.org import Org
from central.rules import RuleBook
from central.texts import Texts
from tests.central.conftest import rating

NEGATIVE = {"id": "3f2a9c1e-0000", "kind": "negative_rating", "site": "store-1", "location": "exit",
            "title": "Unhappy visitor at store-1 / exit",
            "detail": {"value": 1, "scale": "smiley4", "reason": "waiting_time", "comment": "20 min i kön",
                       "rating_ts": "2026-11-24T09:15:02Z"}}
SHARE = {"id": "5b1c0d2e-0000", "kind": "negative_share", "site": "store-1", "location": "exit", "hits": 3,
         "title": "40 % unhappy at store-1 / exit in the last 30 min",
         "detail": {"negatives": 4, "responses": 10, "window": 1800, "reasons": [["waiting_time", 3], ["staff", 1]]}}
LATE = {"id": "7d3e5f60-0000", "kind": "backlog_arrived", "site": "store-1", "location": "exit",
        "title": "40 late ratings arrived from store-1 / exit, 6 unhappy",
        "detail": {"ratings": 40, "negatives": 6, "oldest": "2026-11-24T07:02:00Z", "newest": "2026-11-24T09:58:00Z",
                   "reasons": {"waiting_time": 4, "cleanliness": 2},
                   "top_reasons": [["waiting_time", 4], ["cleanliness", 2]]}}
TZ = "Europe/Stockholm"


def site_org(receiver, language: str, **contact) -> Org:
    person = {"name": "anna", "urls": [receiver.url("anna")], **contact}
    return Org.from_dict({"sites": {"store-1": {
        "hours": {"timezone": TZ}, "contacts": [person], "language": language,
        "visitor_followup": f"json://127.0.0.1:{receiver.port}/visitor?to={{contact}}"}}})


def negative(store, when, **kw):
    batch = store.store_ratings("store-1", "kiosk-1", [rating(1, ts=when, **kw)], when,
                                rules.rating_rule(RuleBook({"default": {"negative_rating": {"cooldown": 0}}})))
    return batch.alerts[0].alert


@pytest.mark.parametrize(("lang", "title", "body"), [
    ("en", "Unhappy visitor at store-1 / exit",
     ["store-1 / exit", "Rating: 1 on smiley4", "Reason: Waiting time", "Comment: 20 min i kön",
      "At: Tue 24 Nov 10:15", "Seen it: smileloop alerts ack 3f2a9c1e --by <you>"]),
    ("sv", "Missnöjd besökare vid store-1 / exit",
     ["store-1 / exit", "Betyg: 1 på smiley4", "Orsak: Väntetid", "Kommentar: 20 min i kön",
      "När: tis 24 nov. 10:15", "Sett det: smileloop alerts ack 3f2a9c1e --by <ditt namn>"]),
])
def test_negative_rating_alert(lang, title, body):
    assert alert_text(NEGATIVE, tz=TZ, lang=lang) == (title, "\n".join(body))


@pytest.mark.parametrize(("lang", "title", "body"), [
    ("en", "40 % unhappy at store-1 / exit in the last 30 min",
     ["store-1 / exit", "4 of 10 responses unhappy in 30 min", "Reasons: Waiting time (3), Staff (1)",
      "Seen 3 times", "Seen it: smileloop alerts ack 5b1c0d2e --by <you>"]),
    ("sv", "40 % missnöjda vid store-1 / exit de senaste 30 min",
     ["store-1 / exit", "4 av 10 svar missnöjda på 30 min", "Orsaker: Väntetid (3), Personal (1)",
      "Sett 3 gånger", "Sett det: smileloop alerts ack 5b1c0d2e --by <ditt namn>"]),
])
def test_negative_share_alert(lang, title, body):
    assert alert_text(SHARE, tz=TZ, lang=lang) == (title, "\n".join(body))


@pytest.mark.parametrize(("lang", "title", "body"), [
    ("en", "40 late ratings arrived from store-1 / exit, 6 unhappy — most often Waiting time (4), Cleanliness (2)",
     ["store-1 / exit",
      "40 ratings made from Tue 24 Nov 08:02 to Tue 24 Nov 10:58 arrived late (the device was offline)",
      "6 of them unhappy; most often: Waiting time (4), Cleanliness (2)",
      "One summary instead of a page per rating; each rating is in the store",
      "Seen it: smileloop alerts ack 7d3e5f60 --by <you>"]),
    ("sv", "40 sena betyg kom från store-1 / exit, 6 missnöjda — oftast Väntetid (4), Renlighet (2)",
     ["store-1 / exit",
      "40 betyg givna från tis 24 nov. 08:02 till tis 24 nov. 10:58 kom sent (enheten var offline)",
      "6 av dem missnöjda; oftast: Väntetid (4), Renlighet (2)",
      "En sammanfattning i stället för ett larm per betyg; varje betyg finns i databasen",
      "Sett det: smileloop alerts ack 7d3e5f60 --by <ditt namn>"]),
])
def test_backlog_arrived_summary(lang, title, body):
    assert alert_text(LATE, tz=TZ, lang=lang) == (title, "\n".join(body))


def test_an_unknown_kind_keeps_its_stored_title_and_lists_its_detail():
    odd = {"id": "00000000-0000", "kind": "from_the_future", "site": "s", "location": "l", "title": "As stored",
           "detail": {"x": 1}}
    assert Texts("sv").alert(odd)[0] == "As stored"


@pytest.mark.parametrize(("lang", "title", "reopened"), [
    ("en", "Not yet handled: Unhappy visitor at store-1 / exit", "Back again: Unhappy visitor at store-1 / exit"),
    ("sv", "Ännu inte hanterat: Missnöjd besökare vid store-1 / exit",
     "Tillbaka igen: Missnöjd besökare vid store-1 / exit"),
])
def test_escalation_reaches_the_next_level_in_the_site_language(store, clock, receiver, lang, title, reopened):
    org = site_org(receiver, lang)
    d = Dispatcher(store, lambda: org)
    alert = negative(store, clock.now(), reason="staff")
    assert d.queue(alert, clock.now(), purpose="escalation-1") == 1
    assert d.run_due(clock.now()) == 1
    [req] = receiver.requests
    assert req["body"]["title"] == title
    assert ("Orsak: Personal" if lang == "sv" else "Reason: Staff") in req["body"]["message"].splitlines()
    assert alert_text(alert, "reopened-1", TZ, lang)[0] == reopened


@pytest.mark.parametrize(("lang", "title", "line", "acknowledged"), [
    ("en", "smileloop digest: 2 alerts", "- Tue 24 Nov 11:00 Unhappy visitor at store-1 / exit (open, {id})",
     "- Tue 24 Nov 11:10 Unhappy visitor at store-1 / exit (acknowledged, {id})"),
    ("sv", "smileloop-sammandrag: 2 larm", "- tis 24 nov. 11:00 Missnöjd besökare vid store-1 / exit (öppet, {id})",
     "- tis 24 nov. 11:10 Missnöjd besökare vid store-1 / exit (kvitterat, {id})"),
])
def test_digest(store, clock, receiver, lang, title, line, acknowledged):
    org = site_org(receiver, lang, digest=60)
    d = Dispatcher(store, lambda: org)
    t0 = clock.now()
    first, second = negative(store, t0), negative(store, t0 + timedelta(minutes=10))
    d.queue(first, t0)
    d.queue(second, t0 + timedelta(minutes=10))
    lifecycle.acknowledge(store, second["id"], "anna", t0 + timedelta(minutes=11))
    assert d.run_due(t0 + timedelta(minutes=60)) == 1
    [req] = receiver.requests
    assert req["body"]["title"] == title
    assert req["body"]["message"].splitlines() == [line.format(id=first["id"][:8]),
                                                   acknowledged.format(id=second["id"][:8])]


@pytest.mark.parametrize(("lang", "title", "message"), [
    ("en", "Thank you for your feedback", "You told us about waiting time: We opened a second till."),
    ("sv", "Tack för dina synpunkter", "Ni sa till om väntetid: Vi öppnade en kassa till."),
])
def test_follow_up_to_the_visitor(store, clock, receiver, lang, title, message):
    org = site_org(receiver, lang)
    d = Dispatcher(store, lambda: org)
    alert = negative(store, clock.now(), reason="waiting_time", contact="ann@example.com")
    lifecycle.resolve(store, alert["id"], "anna", "one till", "We opened a second till", clock.now(), dispatcher=d,
                      actions={"sv": "Vi öppnade en kassa till"})
    d.run_due(clock.now())
    [req] = receiver.requests
    assert req["path"].startswith("/visitor")
    assert (req["body"]["title"], req["body"]["message"]) == (title, message)


def test_outcome_in_every_language_from_the_reason_label_and_the_action(store, clock, receiver):
    org = site_org(receiver, "sv")
    cleaning = negative(store, clock.now(), reason="cleanliness")
    lifecycle.resolve(store, cleaning["id"], "anna", "bins overflowing", "We empty the bins every hour now",
                      clock.now(), org=org, actions={"sv": "Vi tömmer soporna varje timme nu"})
    vague = negative(store, clock.now())
    lifecycle.resolve(store, vague["id"], "anna", "unclear", "We asked the team!", clock.now(), org=org)
    texts = sorted((item["text"] for item in store.outcomes("store-1", "exit")), key=lambda t: t["en"])
    assert texts == [
        {"sv": "Ni sa till om renlighet: Vi tömmer soporna varje timme nu.",
         "en": "You told us about cleanliness: We empty the bins every hour now."},
        {"sv": "Ni sa att besöket kunde ha varit bättre: We asked the team!",
         "en": "You told us your visit could be better: We asked the team!"},
    ]


def test_a_worded_outcome_is_kept_as_typed_under_the_site_language(store, clock, receiver):
    alert = negative(store, clock.now(), reason="price")
    lifecycle.resolve(store, alert["id"], "anna", "old labels", "new labels", clock.now(),
                      org=site_org(receiver, "sv"), outcome="Nu stämmer prislapparna.")
    [item] = store.outcomes("store-1", "exit")
    assert item["text"] == {"sv": "Nu stämmer prislapparna."}
