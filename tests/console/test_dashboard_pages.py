"""The dashboard page, its CSV and the ratings API: the figures of central.dashboard, limited to the user's
sites, and a CSV that holds exactly what the page shows."""

from __future__ import annotations

import csv
import io

from tests.central.test_dashboard import load

RANGE = "start=2026-11-23&end=2026-11-24"


def test_the_page_shows_the_figures_and_charts_of_the_users_sites(console_store, as_user):
    load(console_store)
    admin = as_user("admin")
    page = admin.get(f"/dashboard?{RANGE}")
    assert page.status_code == 200
    for section in ("totals", "heatmap", "ranking"):
        assert f'id="{section}"' in page.text
    assert page.text.count("data-chart=") == 5 and "store-2 / " in page.text
    anna = as_user("anna")
    mine = anna.get(f"/dashboard?{RANGE}")
    assert "store-1 / exit" in mine.text and "store-2 / " not in mine.text and "store-9" not in mine.text
    assert anna.get(f"/dashboard?site=store-2&{RANGE}").status_code == 403


def test_the_csv_is_what_the_page_shows_and_scoped(console_store, as_user):
    load(console_store)
    anna = as_user("anna")
    r = anna.get(f"/dashboard.csv?section=ranking&{RANGE}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {(x["site"], x["location"]) for x in rows} == {("store-1", "exit"), ("store-1", "cafe")}
    api = anna.get("/api/aggregates?from=2026-11-23&to=2026-11-24").json()
    assert [(x["site"], x["location"], x["n"]) for x in api["ranking"]] == [
        (x["site"], x["location"], int(x["n"])) for x in rows]
    assert anna.get(f"/dashboard.csv?section=nope&{RANGE}").status_code == 400


def test_the_ratings_api_and_csv_leave_out_other_sites_tests_and_contacts(console_store, as_user):
    load(console_store)
    bo = as_user("bo")
    page = bo.get("/api/ratings?from=2026-11-23&to=2026-11-24&limit=10").json()
    assert {r["site"] for r in page["items"]} == {"store-2"} and page["next_offset"] is None
    anna = as_user("anna")
    text = anna.get("/api/ratings.csv?from=2026-11-23&to=2026-11-24").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and {r["site"] for r in rows} == {"store-1"}
    assert "contact" not in rows[0] and all(r["id"] for r in rows)
    assert len(rows) == 6  # 2 at the exit (test tap and repeat left out) and 4 at the cafe
    first = anna.get("/api/ratings?from=2026-11-23&to=2026-11-24&limit=4").json()
    assert len(first["items"]) == 4 and first["next_offset"] == 4
    bad = anna.get("/api/ratings?from=2026-11-30&to=2026-11-01")
    assert bad.status_code == 400 and bad.json()["error"]
