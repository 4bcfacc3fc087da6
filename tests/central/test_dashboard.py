"""Dashboards on SQLite and PostgreSQL: exact figures on a small known data set (test taps and repeats left out,
the site's own days and hours), NPS and CSAT, a revision seen after the refresh, scoping that never leaks, the
previous period, the CSV equal to the JSON, and random inputs giving a result or a clear error."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central.dashboard import MAX_DAYS, Range, dashboard
from central.dashboard_export import RATING, SECTIONS, csv_sections, csv_text, ratings_csv
from central.errors import AccessDenied, DashboardError
from central.org import Org
from central.records import Candidate
from central.store_dashboard import DashboardStore, mark_dirty
from tests.central.conftest import ORG, rating

MON, TUE = date(2026, 11, 23), date(2026, 11, 24)  # Stockholm is UTC+1 then
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def load(store) -> None:
    """store-1 (Stockholm): 6 visitors' ratings in the range, a test tap and a repeat, two in the previous
    period; store-2 (UTC) one; store-9 (not in the org: UTC) one."""
    exit_ = [rating(4, ts=at("2026-11-23T09:30"), seq=1),  # Mon 10:30 local
             rating(1, ts=at("2026-11-23T23:30"), seq=2, reason="queue"),  # Tue 00:30 local
             rating(1, ts=at("2026-11-24T10:00"), seq=3, flags=("test",)),
             rating(1, ts=at("2026-11-24T10:00"), seq=4, flags=("repeat",)),
             rating(3, ts=at("2026-11-21T12:00"), seq=5),  # previous period
             rating(4, ts=at("2026-11-22T22:59"), seq=6)]  # Sun 23:59 local: previous period
    cafe = [rating(10, ts=at("2026-11-24T10:00"), location="cafe", scale="nps", seq=1),
            rating(5, ts=at("2026-11-24T10:10"), location="cafe", scale="nps", seq=2, reason="price"),
            rating(4, ts=at("2026-11-24T12:00"), location="cafe", scale="csat5", seq=3),
            rating(2, ts=at("2026-11-24T12:05"), location="cafe", scale="csat5", seq=4, reason="queue",
                   comment="=Too slow", rid="r-comment")]
    store.store_ratings("store-1", "kiosk-1", exit_, NOW)
    store.store_ratings("store-1", "kiosk-2", cafe, NOW)
    store.store_ratings("store-2", "kiosk-5", [rating(5, ts=at("2026-11-24T05:00"), scale="smiley5",
                                                      comment="fine")], NOW)
    store.store_ratings("store-9", "kiosk-9", [rating(2, ts=at("2026-11-24T01:00"))], NOW)


def board(store, org, **kw):
    args = {"start": MON, "end": TUE, "sites": None, "now": NOW, **kw}
    return dashboard(store, org, **args).as_dict()


def test_figures_of_one_site_are_exact(store, org):
    load(store)
    d = board(store, org, site="store-1")
    t = d["totals"]
    assert (t["n"], t["index"], t["nps"], t["csat"], t["negative_share"]) == (6, 58.3, 0.0, 50.0, 50.0)
    assert (t["previous_n"], t["previous_index"], t["previous_negative_share"]) == (2, 83.3, 0.0)
    assert (t["index_change"], t["negative_share_change"]) == (-25.0, 50.0)
    assert [(s["day"], s["n"], s["index"]) for s in d["series"]] == [("2026-11-23", 1, 100.0),
                                                                     ("2026-11-24", 5, 50.0)]
    assert d["series"][0]["nps"] is None and d["series"][1]["nps"] == 0.0 and d["series"][1]["csat"] == 50.0
    cells = d["heatmap"]["cells"]
    assert (cells[0][10], cells[1][0], cells[1][11], cells[1][13]) == (1, 1, 2, 2)
    assert sum(map(sum, cells)) == 6
    assert [(r["reason"], r["n"], r["negative"], r["share"], r["trend"]) for r in d["reasons"]] == [
        ("queue", 2, 2, 66.7, [0, 2]), ("price", 1, 1, 33.3, [0, 1])]
    assert [(r["location"], r["n"], r["index"], r["negative_share"], r["previous_index"], r["index_change"],
             r["negative_share_change"]) for r in d["ranking"]] == [
        ("cafe", 4, 62.5, 50.0, None, None, None), ("exit", 2, 50.0, 50.0, 83.3, -33.3, 50.0)]
    assert [(c["id"], c["time"], c["comment_shown"]) for c in d["comments"]] == [
        ("r-comment", "2026-11-24T13:05:00+01:00", "=Too slow")]
    assert d["timezones"] == {"store-1": "Europe/Stockholm"}


def test_all_sites_include_sites_the_org_does_not_describe(store, org):
    load(store)
    d = board(store, org)
    assert d["totals"]["n"] == 8
    assert {(r["site"], r["location"]) for r in d["ranking"]} == {
        ("store-1", "cafe"), ("store-1", "exit"), ("store-2", "exit"), ("store-9", "exit")}
    assert d["heatmap"]["cells"][1][1] == 1  # store-9 at 01:00 UTC, a Tuesday
    loc = board(store, org, site="store-1", location="exit")
    assert (loc["totals"]["n"], [r["location"] for r in loc["ranking"]]) == (2, ["exit"])


def test_a_comment_is_never_the_original_nor_a_contact(store, org):
    store.store_ratings("store-1", "kiosk-1", [rating(1, ts=at("2026-11-24T10:00"), comment="call 0701234567",
                                                      contact="a@example.com")], NOW)
    text = json.dumps(board(store, org))
    assert "0701234567" not in text and "a@example.com" not in text
    rows = "".join(ratings_csv(store, org, start=MON, end=TUE, sites=None))
    assert "0701234567" not in rows and "a@example.com" not in rows


def test_a_revision_changes_the_reasons_after_the_refresh(store, org):
    first = rating(1, ts=at("2026-11-24T10:00"), reason="queue", rid="rev-1")
    store.store_ratings("store-1", "kiosk-1", [first], NOW)
    assert [r["reason"] for r in board(store, org)["reasons"]] == ["queue"]
    again = rating(1, ts=at("2026-11-24T10:00"), reason="staff", rid="rev-1", rev=1)
    store.store_ratings("store-1", "kiosk-1", [again], NOW)
    assert DashboardStore(store).dirty() == 1
    assert [(r["reason"], r["n"]) for r in board(store, org)["reasons"]] == [("staff", 1)]
    assert DashboardStore(store).dirty() == 0


def test_a_mark_made_during_a_refresh_survives_it(store, org):
    """A rating stored while its day is recomputed (a concurrent ingest) keeps its day marked."""
    store.store_ratings("store-1", "kiosk-1", [rating(4, ts=at("2026-11-24T10:00"))], NOW)
    reads = DashboardStore(store)
    plain = reads.db.executemany

    def ingest_meanwhile(sql, rows):
        if sql.startswith("DELETE FROM rollup_dirty"):
            reads.db.executemany = plain
            store.store_ratings("store-1", "kiosk-1", [rating(1, ts=at("2026-11-24T11:00"), seq=2)], NOW)
        plain(sql, rows)

    reads.db.executemany = ingest_meanwhile
    try:
        assert reads.refresh(lambda site: "Europe/Stockholm") == 1
    finally:
        reads.db.executemany = plain
    assert reads.dirty() == 1
    assert board(store, org)["totals"]["n"] == 2


def test_half_hour_zones_and_zone_changes_count_exact_local_days(store, org):
    doc = json.loads(json.dumps(ORG))
    doc["sites"]["store-2"]["hours"]["timezone"] = "Asia/Kolkata"  # +5:30
    store.store_ratings("store-2", "kiosk-5", [rating(4, ts=at("2026-11-23T18:29")),  # Mon 23:59 local
                                               rating(1, ts=at("2026-11-23T18:45"), seq=2)], NOW)  # Tue 00:15
    d = board(store, Org.from_dict(doc), site="store-2")
    assert [s["n"] for s in d["series"]] == [1, 1]
    assert (d["heatmap"]["cells"][0][23], d["heatmap"]["cells"][1][0]) == (1, 1)
    d = board(store, org, site="store-2")  # the org says UTC again: the rollups are made again
    assert [s["n"] for s in d["series"]] == [2, 0]
    assert d["heatmap"]["cells"][0][18] == 2


def test_a_day_the_clocks_change_has_its_own_hours(store, org):
    sunday = date(2026, 10, 25)  # Stockholm: 03:00 CEST → 02:00 CET, a 25-hour day
    store.store_ratings("store-1", "kiosk-1", [rating(4, ts=at("2026-10-24T22:30")),  # 00:30 local, +2
                                               rating(4, ts=at("2026-10-25T00:30"), seq=2),  # 02:30 CEST
                                               rating(4, ts=at("2026-10-25T01:30"), seq=3),  # 02:30 CET
                                               rating(4, ts=at("2026-10-25T22:59"), seq=4)], NOW)  # 23:59 CET
    d = board(store, org, site="store-1", start=sunday, end=sunday)
    assert d["totals"]["n"] == 4 and d["heatmap"]["cells"][6][2] == 2
    assert (d["heatmap"]["cells"][6][0], d["heatmap"]["cells"][6][23]) == (1, 1)


def test_marks_count_up(store):
    for _ in range(2):
        with store.transaction():
            mark_dirty(store.db, [("store-1", "2026-11-24"), ("store-1", "2026-11-24")], "x")
    assert store.query("SELECT gen FROM rollup_dirty") == [{"gen": 1}]


def test_scoping_never_leaks_another_site(store, org):
    load(store)
    d = board(store, org, sites=("store-2",))
    assert d["totals"]["n"] == 1 and {r["site"] for r in d["ranking"]} == {"store-2"}
    assert [c["comment_shown"] for c in d["comments"]] == ["fine"]
    assert d["timezones"] == {"store-2": "UTC"}
    assert board(store, org, sites=())["totals"]["n"] == 0
    with pytest.raises(AccessDenied):
        board(store, org, sites=("store-2",), site="store-1")
    lines = list(csv.reader(io.StringIO("".join(ratings_csv(store, org, start=MON, end=TUE, sites=("store-2",))))))
    assert [r[1] for r in lines[1:]] == ["store-2"]


def test_alerts_per_day_and_time_to_resolve_against_the_sla(store, org):
    def alert(key: str, opened: str) -> str:
        c = Candidate("negative_rating", "store-1", "exit", "t", group_key=key)
        return store.open_alert(c, at(opened)).alert["id"]

    ok, late = alert("a", "2026-11-24T10:00"), alert("b", "2026-11-24T10:00")
    alert("c", "2026-11-23T10:00")
    store.set_acknowledged(ok, "ann", at("2026-11-24T10:10"))  # 600 s ≤ ack_sla 900
    store.set_resolved(ok, "ann", at("2026-11-24T11:10"), "x", "y")  # 3600 s ≤ resolve_sla 14400
    store.set_acknowledged(late, "ann", at("2026-11-24T10:30"))  # 1800 s > 900
    store.set_resolved(late, "ann", at("2026-11-24T10:40"), "x", "y")
    a = board(store, org)["alerts"]
    assert [(x["opened"], x["resolved"]) for x in a["days"]] == [(1, 0), (2, 2)]
    assert (a["still_open"], a["with_sla"], a["within_sla"], a["within_sla_share"]) == (1, 2, 1, 50.0)
    assert (a["median_resolve_hours"], a["p90_resolve_hours"]) == (0.7, 1.2)
    assert board(store, org, sites=("store-2",))["alerts"]["opened"] == 0


def test_the_csv_is_what_the_json_shows(store, org):
    load(store)
    d = dashboard(store, org, start=MON, end=TUE, sites=None, now=NOW)
    shown = d.as_dict()
    sections = {s.name: s for s in csv_sections(d)}
    assert tuple(sections) == SECTIONS
    parsed = list(csv.reader(io.StringIO(csv_text(d, "series"))))
    assert parsed[0] == ["day", "n", "index", "nps", "csat", "negative_share"]
    assert parsed[1:] == [[s["day"], *("" if s[k] is None else str(s[k]) for k in parsed[0][1:])]
                          for s in shown["series"]]
    ranking = list(csv.reader(io.StringIO(csv_text(d, "ranking"))))
    assert len(ranking) == len(shown["ranking"]) + 1 and ranking[1][:3] == [
        shown["ranking"][0]["site"], shown["ranking"][0]["location"], str(shown["ranking"][0]["n"])]
    comments = list(csv.reader(io.StringIO(csv_text(d, "comments"))))
    assert "'=Too slow" in comments[1]  # never run as a formula
    assert all(f"# {name}" in csv_text(d) for name in SECTIONS)
    with pytest.raises(DashboardError):
        csv_text(d, "nope")


def test_the_ratings_export_lists_the_visitors_ratings_in_local_time(store, org):
    load(store)
    rows = list(csv.DictReader(io.StringIO("".join(ratings_csv(store, org, start=MON, end=TUE, sites=None,
                                                                site="store-1", page=2)))))
    assert tuple(rows[0]) == RATING and len(rows) == 6
    assert rows[1]["local_time"] == "2026-11-24T00:30:00.000+01:00" and rows[1]["reason"] == "queue"
    assert all("contact" not in r for r in rows)


@pytest.mark.parametrize(("start", "end", "problem"), [("2026-13-01", None, "not a date"),
                                                       ("2026-11-24", "2026-11-23", "before it starts"),
                                                       ("2025-01-01", "2026-11-24", "at most 400")])
def test_bad_ranges_are_clear_errors(start, end, problem):
    with pytest.raises(DashboardError, match=problem):
        Range.parse(start, end, today=TUE)


def test_a_location_needs_its_site(store, org):
    with pytest.raises(DashboardError, match="needs its site"):
        board(store, org, location="exit")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.dates(date(1990, 1, 1), date(2100, 1, 1)), length=st.integers(-5, MAX_DAYS + 5),
       sites=st.none() | st.lists(st.sampled_from(["store-1", "store-2", "store-9", "x y", ""]), max_size=3),
       site=st.none() | st.sampled_from(["store-1", "store-2", "nowhere", "bad id!", ""]),
       location=st.none() | st.sampled_from(["exit", "cafe", "?"]))
def test_any_input_gives_figures_or_a_clear_error(store, org, start, length, sites, site, location):
    scope = None if sites is None else tuple(sites)
    try:
        d = dashboard(store, org, start=start, end=start + timedelta(days=length), sites=scope, site=site,
                      location=location, now=NOW)
    except (DashboardError, AccessDenied) as e:
        assert str(e)
        return
    shown = d.as_dict()
    assert len(shown["series"]) == length + 1
    assert scope is None or {r["site"] for r in shown["ranking"]} <= set(scope)
