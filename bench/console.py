"""Console dashboards over many ratings: ``central.dashboard.dashboard`` on SQLite and on PostgreSQL.

The data: ``ratings`` visitors' ratings (1 M with ``--full``) over 90 days at 20 sites × 3 locations, in three
time zones, at the hours shops are busy (08–22 local, peaks at noon and late afternoon), on smiley4, csat5 and
nps, with reasons on most negatives, a comment on 3 %, and 3 % test taps and repeats; inserted in bulk straight
into the store's ``ratings`` (PostgreSQL: ``COPY``), then every day marked stale as migration 009 marks a
store that already has ratings.

Measured, each backend in turn (its schema dropped after):

- the one-time build of the rollups (every (site, day) stale: :meth:`DashboardStore.refresh`);
- the 90-day dashboard of all sites and of one site: p50 and p99 of ``repeats`` calls, rollups fresh;
- a 45-day dashboard (its previous period also full of ratings);
- after one burst of ingest (20 messages × 100 ratings through ``store_messages``, every site marked): the
  refresh alone, and the all-sites dashboard with its refresh;
- baselines in the same run: the raw ``SELECT count(*)`` of the range and the raw ``GROUP BY`` per site,
  location and day (what one section would cost without rollups).

Target: the 90-day dashboards under 1 s at p99 on both. Over HTTP too, when the console serves a dashboard
route (``central/console``); otherwise the function alone, and the results say so.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.stats import summary
from central.dashboard import dashboard
from central.ingest import IncomingRating
from central.org import Org
from central.rulebook import RuleBook
from central.store import CentralStore
from central.store_dashboard import TABLES, DashboardStore
from central.store_ingest import MessageRatings
from central.store_reads import NOT_REPEAT
from smileloop_core.scales import SCALES

PG_URL = os.environ.get("SMILELOOP_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
TARGET_MS = 1000.0
DAYS = 90
END = date(2026, 11, 30)
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ZONES = ("Europe/Stockholm",) * 12 + ("Europe/London",) * 5 + ("America/New_York",) * 3
SITES = tuple(f"site-{i:02d}" for i in range(len(ZONES)))
LOCATIONS = (("entrance", "smiley4"), ("checkout", "csat5"), ("cafe", "nps"))
HOURS = tuple(range(8, 22))
HOUR_WEIGHTS = (2, 4, 6, 8, 10, 9, 7, 6, 7, 8, 7, 5, 3, 2)
VALUES = {"smiley4": (8, 12, 35, 45), "csat5": (5, 8, 17, 35, 35), "nps": (2, 1, 1, 2, 2, 4, 6, 12, 20, 25, 25)}
REASONS = ("queue", "staff", "cleanliness", "price", "stock")
COLUMNS = ("id, device_id, site, location, scale, value, sentiment, ts, received_at, seq, reason, comment, "
           "comment_shown, flags, rev, ts_device, ts_repaired")


def org_doc() -> dict[str, Any]:
    return {"name": "bench", "sites": {s: {"timezone": tz, "locations": {loc: {"devices": [f"{s}-{loc}"]}
                                                                         for loc, _ in LOCATIONS}}
                                       for s, tz in zip(SITES, ZONES, strict=True)}}


def rows(n: int, seed: int = 14) -> list[tuple[Any, ...]]:
    """``n`` ratings over the :data:`DAYS` days up to :data:`END`, local busy hours, in :data:`COLUMNS` order."""
    rnd = random.Random(seed)
    first = END - timedelta(days=DAYS - 1)
    offsets = {(tz, d): ZoneInfo(tz).utcoffset(datetime.combine(first + timedelta(days=d), datetime.min.time()))
               for tz in set(ZONES) for d in range(DAYS)}
    sites = [rnd.randrange(len(SITES)) for _ in range(n)]
    places = [rnd.randrange(len(LOCATIONS)) for _ in range(n)]
    days = [rnd.randrange(DAYS) for _ in range(n)]
    hours = rnd.choices(HOURS, HOUR_WEIGHTS, k=n)
    seqs: dict[str, int] = {}
    out: list[tuple[Any, ...]] = []
    base = datetime.combine(first, datetime.min.time())
    for i in range(n):
        site, (location, scale) = SITES[sites[i]], LOCATIONS[places[i]]
        tz = ZONES[sites[i]]
        local = base + timedelta(days=days[i], hours=hours[i], seconds=rnd.randrange(3600))
        offset = offsets[(tz, days[i])]
        assert offset is not None
        ts = (local - offset).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        s = SCALES[scale]
        value = s.low + rnd.choices(range(len(VALUES[scale])), VALUES[scale])[0]
        sentiment = s.sentiment(value)
        reason = rnd.choice(REASONS) if sentiment == "negative" and rnd.random() < 0.7 else None
        comment = f"comment {i}" if rnd.random() < 0.03 else None
        r = rnd.random()
        flags = '["test"]' if r < 0.01 else '["repeat"]' if r < 0.03 else None
        device = f"{site}-{location}"
        seqs[device] = seqs.get(device, 0) + 1
        out.append((f"b{i}", device, site, location, scale, value, sentiment, ts, ts, seqs[device], reason, comment,
                    comment, flags, 0, ts, 0))
    return out


def insert(store: CentralStore, data: list[tuple[Any, ...]]) -> float:
    """Bulk insert (no dirty marks: the bench marks every day afterwards); seconds."""
    t0 = time.perf_counter()
    if store.dialect == "postgresql":
        conn = store.db.conn  # type: ignore[attr-defined]
        with conn.transaction(), conn.cursor() as cur, cur.copy(f"COPY ratings ({COLUMNS}) FROM STDIN") as copy:
            for row in data:
                copy.write_row(row)
        conn.execute("ANALYZE ratings")
    else:
        marks = ",".join("?" * len(COLUMNS.split(",")))
        for i in range(0, len(data), 50_000):
            with store.transaction():
                store.db.executemany(f"INSERT INTO ratings ({COLUMNS}) VALUES ({marks})", data[i:i + 50_000])
        store.db.execute("ANALYZE")
    return time.perf_counter() - t0


def burst(seq: int) -> list[MessageRatings]:
    """One burst of ingest as central commits it: 20 messages × 100 fresh ratings, one message per site."""
    out = []
    ts = NOW - timedelta(minutes=5)
    for m, site in enumerate(SITES):
        location, scale = LOCATIONS[m % len(LOCATIONS)]
        s = SCALES[scale]
        values = [s.low + j % (s.high - s.low + 1) for j in range(100)]
        ratings = [IncomingRating(id=str(uuid.uuid4()), seq=seq * 1000 + j, ts=ts, scale=scale, value=v,
                                  sentiment=s.sentiment(v), location=location, reason=None, comment=None,
                                  contact=None, flags=(), boot_id=None, mono=None, rev=0)
                   for j, v in enumerate(values)]
        out.append(MessageRatings(site, f"{site}-{location}", ratings))
    return out


def timed(fn: Any, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def backend(store: CentralStore, data: list[tuple[Any, ...]], *, repeats: int) -> dict[str, Any]:
    org = Org.from_dict(org_doc())
    store.put_document("org", org_doc(), NOW)
    book = RuleBook()
    reads = DashboardStore(store)
    out: dict[str, Any] = {"ratings": len(data), "insert_s": insert(store, data)}
    out["days_marked"] = reads.mark_all("bench")
    t0 = time.perf_counter()
    zone = lambda site: org.site(site).hours.timezone  # noqa: E731
    out["days_built"] = reads.refresh(zone)
    out["build_s"] = time.perf_counter() - t0
    out["rollup_rows"] = {t: store.count(t) for t in TABLES}
    start = END - timedelta(days=DAYS - 1)
    lo, hi = f"{start - timedelta(days=1)}T00", f"{END + timedelta(days=1)}T23"

    def board(first: date = start, **kw: Any) -> Any:
        return dashboard(store, org, start=first, end=END, now=NOW, book=book, **{"sites": None, **kw})

    board()  # warm: plans, caches
    raw_n = max(1, min(5, repeats // 4))
    count = timed(lambda: store.query("SELECT count(*) AS n FROM ratings WHERE ts >= ? AND ts < ?", (lo, hi)), raw_n)
    group = timed(lambda: store.query(
        "SELECT site, location, substr(ts, 1, 10) AS day, count(*) AS n, avg(value) AS v FROM ratings "
        f"WHERE ts >= ? AND ts < ? AND {NOT_REPEAT} GROUP BY site, location, substr(ts, 1, 10)", (lo, hi)), raw_n)
    out["raw_count_ms"] = summary(count, 1e3)
    out["raw_group_by_ms"] = summary(group, 1e3)
    out["all_sites_ms"] = summary(timed(board, repeats), 1e3)
    out["one_site_ms"] = summary(timed(lambda: board(site=SITES[0]), repeats), 1e3)
    out["manager_3_sites_ms"] = summary(timed(lambda: board(sites=SITES[:3]), repeats), 1e3)
    out["days45_ms"] = summary(timed(lambda: board(END - timedelta(days=44)), repeats), 1e3)
    shown = board().as_dict()
    out["shown_n"] = shown["totals"]["n"]
    refresh, after = [], []
    batches = max(3, repeats // 5)
    for k in range(batches):
        store.store_messages(burst(2 * k), NOW)
        t0 = time.perf_counter()
        reads.refresh(zone)
        refresh.append(time.perf_counter() - t0)
        store.store_messages(burst(2 * k + 1), NOW)
        t0 = time.perf_counter()
        board()
        after.append(time.perf_counter() - t0)
    out["refresh_after_burst_ms"] = summary(refresh, 1e3)
    out["all_sites_after_burst_ms"] = summary(after, 1e3)
    p50 = out["all_sites_ms"]["p50"]
    out["all_vs_raw_count"] = p50 / out["raw_count_ms"]["p50"]
    out["all_vs_raw_group_by"] = p50 / out["raw_group_by_ms"]["p50"]
    out["http"] = http(store, start, repeats)
    pages = [v for k, v in out["http"].items() if k.endswith("_page_all_sites_ms") or k == "live_update_ms"]
    out["met"] = all(out[k]["p99"] < TARGET_MS for k in ("all_sites_ms", "one_site_ms")) and all(
        isinstance(v, dict) and "p99" in v and v["p99"] < TARGET_MS for v in pages)
    return out


def http(store: CentralStore, start: date, repeats: int) -> dict[str, Any]:
    """The console as a browser meets it, over a real uvicorn server on loopback: the 90-day dashboard page and
    its API, the alert list page, and live updates — from an alert opening in the store to its event on the
    alert feed (server-sent events)."""
    import json
    import queue
    import threading

    import httpx
    import uvicorn

    from central.accounts import Accounts
    from central.console.app import create_app
    from central.records import Candidate
    from smileloop_core.clock import FakeClock
    from smileloop_core.mosquitto import reserve_port

    accounts = Accounts(store, clock=FakeClock(NOW))
    if accounts.user("bench") is None:
        accounts.add_user("bench", "admin", "bench-password-long-enough")
    headers = {"Authorization": f"Bearer {accounts.new_token('bench')}"}
    reservation = reserve_port()
    server = uvicorn.Server(uvicorn.Config(create_app(store, clock=FakeClock(NOW), secure_cookies=False),
                                           host="127.0.0.1", port=reservation.port, log_level="warning",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    base = f"http://127.0.0.1:{reservation.port}"
    out: dict[str, Any] = {"server": "uvicorn on loopback, bearer token"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            days = {"start": start.isoformat(), "end": END.isoformat()}
            pages = {"dashboard_page_all_sites_ms": ("/dashboard", days),
                     "dashboard_page_one_site_ms": ("/dashboard", {**days, "site": SITES[0]}),
                     "api_aggregates_all_sites_ms": ("/api/aggregates", {"from": start.isoformat(),
                                                                         "to": END.isoformat()}),
                     "alert_list_page_ms": ("/alerts", {"state": "all"}),
                     "api_alerts_ms": ("/api/alerts", {"state": "all", "limit": 50})}
            for key, (path, params) in pages.items():
                first = client.get(path, params=params)
                if first.status_code != 200:
                    out[key] = {"unavailable": f"GET {path} answered {first.status_code}"}
                    continue
                out[key] = summary(timed(lambda a=path, b=params: client.get(a, params=b), repeats), 1e3)
        out["live_update_ms"] = _live(base, headers, store, repeats, Candidate, queue, json, threading, httpx)
    finally:
        server.should_exit = True
        thread.join(10)
        reservation.release()
    return out


def _live(base: str, headers: dict[str, str], store: CentralStore, repeats: int, candidate: Any, queue: Any,
          json: Any, threading: Any, httpx: Any) -> dict[str, Any]:
    """Open ``repeats`` alerts in the store, one at a time, and time each until the feed's event names it."""
    events: Any = queue.Queue()
    stop = threading.Event()

    def follow() -> None:
        try:
            with httpx.Client(base_url=base, headers=headers, timeout=30) as c, \
                    c.stream("GET", "/alerts/stream", params={"state": "all"}) as r:
                events.put(("open", r.status_code))
                for line in r.iter_lines():
                    if stop.is_set():
                        return
                    if line.startswith("data: ") and '"id"' in line:
                        events.put(("alert", json.loads(line[6:])["id"], time.perf_counter()))
        except httpx.HTTPError:
            return

    threading.Thread(target=follow, daemon=True).start()
    if events.get(timeout=20) != ("open", 200):
        return {"unavailable": "the alert feed did not open"}
    latencies = []
    try:
        for i in range(repeats):
            c = candidate(kind="negative_share", site=SITES[i % len(SITES)], location=LOCATIONS[0][0],
                          group_key=f"bench-live-{uuid.uuid4().hex}", title="bench: live update")
            t0 = time.perf_counter()
            alert_id = store.open_alert(c, NOW).alert["id"]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    got = events.get(timeout=max(0.01, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if got[0] == "alert" and got[1] == alert_id:
                    latencies.append(got[2] - t0)
                    break
    finally:
        stop.set()
    out: dict[str, Any] = summary(latencies, 1e3) if latencies else {}
    out["received"] = f"{len(latencies)} of {repeats}"
    return out


def run(workdir: Path, *, ratings: int, repeats: int) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    data = rows(ratings)
    out: dict[str, Any] = {"what": f"90-day dashboards over {ratings:,} ratings, {len(SITES)} sites × "
                                   f"{len(LOCATIONS)} locations", "ratings": ratings, "repeats": repeats,
                           "target": f"all sites and one site, p99 < {TARGET_MS:.0f} ms on SQLite and PostgreSQL"}
    store = CentralStore(workdir / "console.db")
    try:
        out["sqlite"] = backend(store, data, repeats=repeats)
    finally:
        store.close()
    schema = f"bench_console_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        pg = CentralStore(PG_URL, schema=schema)
    except Exception as e:
        out["postgres"] = {"unavailable": f"PostgreSQL at {PG_URL}: {e}"}
    else:
        try:
            out["postgres"] = backend(pg, data, repeats=repeats)
        finally:
            pg.drop()
            pg.close()
    out["met"] = all(isinstance(out.get(k), dict) and out[k].get("met") is True for k in ("sqlite", "postgres"))
    return out


