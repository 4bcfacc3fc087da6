"""Every rule as a pure function of the store, the org tree and a FakeClock's ``now``: no MQTT, no sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from central import rules
from central.errors import RuleError
from central.rules import RuleBook
from smileloop_core.clock import FakeClock, utc_iso
from tests.central.conftest import rating


def put(store, clock: FakeClock, values, *, every: float = 30.0, device: str = "kiosk-1", location: str = "exit",
        reason: str | None = None, site: str = "store-1", scale: str = "smiley4"):
    """Taps at ``every`` seconds, each stored as it happens; the clock ends at the last tap."""
    for v in values:
        clock.advance(every)
        store.store_ratings(site, device, [rating(v, ts=clock.now(), location=location, reason=reason, scale=scale)],
                            clock.now())


def kinds(candidates):
    return sorted(c.kind for c in candidates)


def test_negative_rating_each_but_not_a_repeat_press_nor_where_disabled(clock):
    book = RuleBook({"store-1/cafe": {"negative_rating": {"enabled": False}}})
    rule = rules.rating_rule(book)
    assert rule(rating(1, ts=clock.now()), "store-1", "kiosk-1").kind == "negative_rating"
    assert rule(rating(1, ts=clock.now(), flags=("repeat",)), "store-1", "kiosk-1") is None
    assert rule(rating(3, ts=clock.now()), "store-1", "kiosk-1") is None
    assert rule(rating(1, ts=clock.now(), location="cafe"), "store-1", "kiosk-1") is None
    assert rule(rating(6, ts=clock.now(), scale="nps"), "store-1", "kiosk-1").detail["value"] == 6


def test_negative_share_happyornot_first_alert(store, org, book, clock):
    put(store, clock, [1, 1, 4])  # 67 % unhappy but only 3 responses
    assert rules.location_rules(store, org, book, "store-1", "exit", clock.now()) == []
    put(store, clock, [4])  # 2 of 4 = 50 %
    [c] = rules.location_rules(store, org, book, "store-1", "exit", clock.now())
    assert c.kind == "negative_share" and c.detail["negatives"] == 2 and c.detail["responses"] == 4
    assert c.title == "50 % unhappy at store-1 / exit in the last 15 min"
    clock.advance(15 * 60)  # the window moves on
    assert rules.location_rules(store, org, book, "store-1", "exit", clock.now()) == []


def test_negative_count_and_low_index(store, org, clock):
    book = RuleBook({"default": {"negative_share": {"enabled": False}, "negative_count": {"count": 3},
                                 "low_index": {"min_responses": 6, "below": 40}}})
    put(store, clock, [2, 2, 3, 3, 2])
    assert kinds(rules.location_rules(store, org, book, "store-1", "exit", clock.now())) == ["negative_count"]
    put(store, clock, [1])  # index of 2,2,3,3,2,1 on 1..4 = 38.9
    found = {c.kind: c for c in rules.location_rules(store, org, book, "store-1", "exit", clock.now())}
    assert set(found) == {"negative_count", "low_index"}
    assert found["low_index"].detail["index"] == 38.9


def test_recurring_reason_counts_the_sites_local_day_with_top_reasons(store, org, book, clock):
    put(store, clock, [1, 2], reason="cleanliness", every=600)
    put(store, clock, [1, 1], reason="waiting_time", location="exit", every=600)
    put(store, clock, [2, 1], reason="waiting_time", location="cafe", device="kiosk-2", every=600)
    assert rules.recurring_reason(store, org, book, "store-1", clock.now()) == []
    put(store, clock, [1], reason="waiting_time", every=600)
    [c] = rules.recurring_reason(store, org, book, "store-1", clock.now())
    assert c.detail["reason"] == "waiting_time" and c.detail["count"] == 5
    assert c.detail["top_reasons"] == [["waiting_time", 5], ["cleanliness", 2]]
    assert c.detail["locations"] == {"exit": 3, "cafe": 2}
    # Stockholm's day ends at 23:00 UTC: the next local day starts from zero
    clock.set_wall(datetime(2026, 11, 24, 23, 30, tzinfo=UTC))
    assert rules.recurring_reason(store, org, book, "store-1", clock.now()) == []


def test_silence_is_far_longer_than_usual_in_opening_hours_only(store, org, book, clock):
    put(store, clock, [3] * 25, every=300)  # a tap every 5 min: usual gap 300 s, limit max(3600, 4 x 300)
    last = clock.now()
    assert rules.silence(store, org, book, "store-1", "kiosk-1", "exit", last + timedelta(minutes=59)) is None
    c = rules.silence(store, org, book, "store-1", "kiosk-1", "exit", last + timedelta(minutes=61))
    assert c is not None and c.kind == "silence" and c.detail["usual_gap_seconds"] == 300
    assert c.detail["limit_seconds"] == 3600
    # 20:30 Stockholm: closed, so no silence alert whatever the gap
    assert rules.silence(store, org, book, "store-1", "kiosk-1", "exit",
                         datetime(2026, 11, 24, 19, 30, tzinfo=UTC)) is None
    # next morning 08:30: only 8 h 30 min... of which the open part since the last tap counts
    morning = datetime(2026, 11, 25, 7, 30, tzinfo=UTC)
    c = rules.silence(store, org, book, "store-1", "kiosk-1", "exit", morning)
    assert c is not None and c.detail["silent_open_seconds"] == pytest.approx(
        (datetime(2026, 11, 24, 19, 0, tzinfo=UTC) - last).total_seconds() + 1800, abs=1)
    # an offline kiosk is the offline rule's business: one cause, one alert
    store.upsert_status("store-1", "kiosk-1", {"state": "offline"}, "{}", morning)
    assert rules.silence(store, org, book, "store-1", "kiosk-1", "exit", morning) is None


def test_silence_needs_history(store, org, book, clock):
    put(store, clock, [3] * 5, every=300)
    assert rules.silence(store, org, book, "store-1", "kiosk-1", "exit", clock.now() + timedelta(hours=3)) is None


def status(store, now, **fields):
    body = {"state": "online", "location": "exit", "backlog": 0, "oldest_unsent": None, "disk_free_mb": 4000.0}
    body.update(fields)
    store.upsert_status("store-1", "kiosk-1", body, "{}", now)


def test_device_offline_after_grace_counting_opening_hours(store, org, book, clock):
    status(store, clock.now(), state="offline")
    clock.advance(599)
    assert rules.status_rules(store, org, book, clock.now()) == []
    clock.advance(2)
    [c] = rules.status_rules(store, org, book, clock.now())
    assert c.kind == "device_offline" and c.device_id == "kiosk-1"
    # a kiosk switched off at closing time is not an alert at night
    evening = datetime(2026, 11, 24, 18, 58, tzinfo=UTC)  # 19:58 Stockholm
    status(store, evening, state="online")
    status(store, evening, state="offline")
    assert rules.status_rules(store, org, book, datetime(2026, 11, 24, 22, 0, tzinfo=UTC)) == []
    assert rules.status_rules(store, org, book, datetime(2026, 11, 25, 7, 5, tzinfo=UTC)) == []  # 2+5 open min
    assert kinds(rules.status_rules(store, org, book, datetime(2026, 11, 25, 7, 9, tzinfo=UTC))) == ["device_offline"]


def test_stale_heartbeat_counts_as_offline(store, org, book, clock):
    status(store, clock.now())
    clock.advance(900 + 600 + 1)
    assert kinds(rules.status_rules(store, org, book, clock.now())) == ["device_offline"]


def test_backlog_and_disk_low(store, org, book, clock):
    status(store, clock.now(), backlog=499, disk_free_mb=250.0)
    assert rules.status_rules(store, org, book, clock.now()) == []
    status(store, clock.now(), backlog=500, disk_free_mb=150.0)
    assert kinds(rules.status_rules(store, org, book, clock.now())) == ["backlog", "disk_low"]
    status(store, clock.now(), backlog=3, oldest_unsent=utc_iso(clock.now() - timedelta(minutes=31)))
    [c] = rules.status_rules(store, org, book, clock.now())
    assert c.kind == "backlog" and c.detail["oldest_age"] == 1860


def test_burst_of_taps_and_same_value_over_and_over(store, org, book, clock):
    put(store, clock, [1, 2, 3, 4] * 2 + [1], every=0.9)  # 9 taps in 8 s
    assert rules.device_rules(store, book, "store-1", "kiosk-1", "exit", clock.now()) == []
    put(store, clock, [2], every=0.9)  # the 10th within 9 s
    assert kinds(rules.device_rules(store, book, "store-1", "kiosk-1", "exit", clock.now())) == ["burst"]
    clock.advance(60)
    put(store, clock, [4] * 14, every=15)
    assert rules.device_rules(store, book, "store-1", "kiosk-1", "exit", clock.now()) == []
    put(store, clock, [4], every=15)  # 15 in a row within 300 s
    [c] = rules.device_rules(store, book, "store-1", "kiosk-1", "exit", clock.now())
    assert c.kind == "same_value" and c.detail["value"] == 4


def test_celebrate_happy_streak_and_promoter_burst(store, org, clock):
    book = RuleBook({"default": {"negative_share": {"enabled": False}}})
    put(store, clock, [4] * 9, every=60)
    assert rules.location_rules(store, org, book, "store-1", "exit", clock.now()) == []
    put(store, clock, [4], every=60)  # 10 positives in the last 30 min
    assert kinds(rules.location_rules(store, org, book, "store-1", "exit", clock.now())) == ["promoter_burst"]
    put(store, clock, [1] + [4] * 19, every=600)  # spread out: no burst; a negative among the last 20
    assert rules.location_rules(store, org, book, "store-1", "exit", clock.now()) == []
    put(store, clock, [4], every=600)  # 20 positives in a row
    found = rules.location_rules(store, org, book, "store-1", "exit", clock.now())
    assert kinds(found) == ["happy_streak"]
    assert found[0].severity == "kudos"


def test_raising_is_idempotent_reopens_within_the_window_and_groups_in_the_cooldown(store, org, book, clock):
    from central import lifecycle

    put(store, clock, [1, 1, 2, 1])
    cands = rules.location_rules(store, org, book, "store-1", "exit", clock.now())
    assert [o.action for o in rules.raise_candidates(store, book, cands, clock.now())] == ["opened"]
    assert [o.action for o in rules.raise_candidates(store, book, cands, clock.now())] == ["repeated"]
    [alert] = store.alerts(kind="negative_share")
    assert alert["hits"] == 2
    lifecycle.resolve(store, alert["id"], "anna", "one till", "opened a second till", clock.now())
    clock.advance(3600)
    assert [o.action for o in rules.raise_candidates(store, book, cands, clock.now())] == ["reopened"]
    assert store.alert(alert["id"])["reopened"] == 1
    lifecycle.resolve(store, alert["id"], "anna", "again", "staff rota changed", clock.now())
    clock.advance(86400 + 1)
    [o] = rules.raise_candidates(store, book, cands, clock.now())
    assert o.action == "opened" and o.alert["id"] != alert["id"]
    # negative ratings at one location within the cooldown: the first notifies, the rest group under it
    rule = rules.rating_rule(book)
    batch = store.store_ratings("store-1", "kiosk-1", [rating(1, ts=clock.now()) for _ in range(3)], clock.now(),
                                rule=rule)
    assert [a.action for a in batch.alerts] == ["opened", "grouped", "grouped"]
    assert store.alert(batch.alerts[0].alert["id"])["hits"] == 3


def test_rule_book_scopes_and_errors_name_the_key():
    book = RuleBook({"default": {"negative_share": {"threshold": 0.6}},
                     "store-1": {"negative_share": {"min_responses": 8}},
                     "store-1/exit": {"negative_share": {"window": "600"}}})
    assert book.params("negative_share")["threshold"] == 0.6
    p = book.params("negative_share", "store-1", "exit")
    assert (p["threshold"], p["min_responses"], p["window"]) == (0.6, 8, 600)
    assert book.params("negative_share", "store-1", "cafe")["window"] == 900
    with pytest.raises(RuleError, match=r"store-1\.burst\.tapz: unknown setting"):
        RuleBook({"store-1": {"burst": {"tapz": 3}}})
    with pytest.raises(RuleError, match=r"default\.silence\.enabled: must be true or false"):
        RuleBook({"default": {"silence": {"enabled": "maybe"}}})
    with pytest.raises(RuleError, match=r"x\.frowns: unknown rule"):
        RuleBook({"x": {"frowns": {}}})
    with pytest.raises(RuleError, match=r"burst\.taps: must be a whole number"):
        RuleBook({"default": {"burst": {"taps": 2.5}}})


def test_device_health_alerts_know_when_they_have_recovered(store, org, book, clock):
    status(store, clock.now(), state="offline")
    clock.advance(700)
    [offline] = rules.raise_candidates(store, book, rules.status_rules(store, org, book, clock.now()), clock.now())
    assert rules.recovered(store, book, offline.alert, clock.now()) is None
    status(store, clock.now(), backlog=900, disk_free_mb=100.0)  # back online, but behind and nearly full
    assert rules.recovered(store, book, offline.alert, clock.now()).startswith("online again since")
    opened = rules.raise_candidates(store, book, rules.status_rules(store, org, book, clock.now()), clock.now())
    backlog, disk = sorted((o.alert for o in opened), key=lambda a: a["kind"])
    assert rules.recovered(store, book, backlog, clock.now()) is None
    assert rules.recovered(store, book, disk, clock.now()) is None
    status(store, clock.now(), backlog=2, disk_free_mb=900.0)
    assert rules.recovered(store, book, backlog, clock.now()) == "backlog down to 2"
    assert rules.recovered(store, book, disk, clock.now()) == "900 MB free again"
    off = RuleBook({"store-1": {"disk_low": {"auto_resolve": False}}})
    assert rules.recovered(store, off, disk, clock.now()) is None


def test_a_silent_kiosk_recovers_with_the_next_tap(store, org, book, clock):
    put(store, clock, [3] * 25, every=300)
    clock.advance(3700)
    [c] = [rules.silence(store, org, book, "store-1", "kiosk-1", "exit", clock.now())]
    [o] = rules.raise_candidates(store, book, [c], clock.now())
    assert rules.recovered(store, book, o.alert, clock.now()) is None
    put(store, clock, [4])
    assert rules.recovered(store, book, o.alert, clock.now()).startswith("a tap again at")


def test_the_periodic_pass_finds_the_silent_kiosk_and_caches_its_usual_gap(store, org, book, clock):
    put(store, clock, [3] * 25, every=300)
    cache: dict = {}
    assert rules.periodic(store, org, book, clock.now() + timedelta(minutes=30), usual_cache=cache) == []
    assert cache[("store-1", "kiosk-1")][1] == 300
    found = rules.periodic(store, org, book, clock.now() + timedelta(minutes=61), usual_cache=cache)
    assert [c.kind for c in found] == ["silence"]
