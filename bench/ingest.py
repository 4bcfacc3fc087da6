"""Central ingest per worker: ratings/s through ``CentralService`` into SQLite and into PostgreSQL.

Measured without the network, so the figure is the store's, the validation's and the rules' alone. The
subject, as the broker delivers it: bursts of :data:`BURST` messages (the broker's in-flight window) through
``CentralService.handle_many(burst, defer_windows=True)`` — validate, one transaction for the burst (group
commit) with the per-rating alerts opened in bulk, receipts — and the window rules once per
``window_interval`` of central's time, as the service loop runs them. Also, labelled: one message per
``handle`` call (a batch of one, window rules after each), 100 ratings and 1 rating per message.

Baseline in the same run, interleaved burst by burst (or message by message): a raw ``executemany`` of the
same rows, one transaction per message, into a bare table of the same database (SQLite WAL
``synchronous=FULL``, or PostgreSQL's defaults). Target for the burst figure: ≥ 0.3× raw on both.

The ratings are stamped at the time the messages are built (live traffic: every unhappy one opens its own
alert, and the window rules run), 100 per message, one in five unhappy, spread over 50 sites. Labelled
``_late``: the same with old stamps, which central files as a backlog (one summary per location, no window
rules): what the store and the validation cost without the alerting.
"""

from __future__ import annotations

import inspect
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from bench import harness
from bench.stats import median, ratios, spread
from central.service import CentralService
from central.store import CentralStore
from smileloop_core import topics
from smileloop_core.mqtt import BrokerSettings

PG_URL = os.environ.get("SMILELOOP_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
_RAW_COLS = "id, device_id, site, location, scale, value, sentiment, ts, received_at, seq, boot_id, mono"


TARGET_VS_RAW = 0.3
BURST = 20  # the broker's in-flight window towards central: what one flush of the intake holds under load
SITES = 50  # a worker serves many sites; alerts (one rating in five is unhappy) spread over them


def _messages(n: int, batch: int, device: str, *, late: bool = False) -> list[tuple[str, bytes, list[tuple[Any, ...]]]]:
    """``n`` messages of ``batch`` ratings stamped now (``late``: on 2026-11-24, a backlog central summarises)."""
    out = []
    ts = harness.wire_rating(0)["ts"] if late else harness.now_iso()
    for m in range(n):
        site, dev = f"{device}-s{m % SITES}", f"{device}-d{m % SITES}"
        ratings = [harness.wire_rating(m * batch + j + 1, value=(1, 3, 4, 4, 4)[(m + j) % 5], ts=ts)
                   for j in range(batch)]
        rows = [(r["id"], dev, site, r["location"], r["scale"], r["value"], "x", r["ts"], r["ts"],
                 r["seq"], r["boot"], r["mono"]) for r in ratings]
        out.append((topics.ratings(site, dev), harness.ratings_message(dev, ratings, site), rows))
    return out


class RawSqlite:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS raw ({_RAW_COLS.replace('id,', 'id TEXT PRIMARY KEY,', 1)})")

    def insert(self, rows: list[tuple[Any, ...]]) -> None:
        self.conn.execute("BEGIN")
        self.conn.executemany(f"INSERT INTO raw ({_RAW_COLS}) VALUES ({','.join('?' * 12)})", rows)
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class RawPostgres:
    def __init__(self, url: str, schema: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=False)
        self.schema = schema
        with self.conn.cursor() as c:
            c.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            c.execute(f"CREATE TABLE IF NOT EXISTS {schema}.raw (id TEXT PRIMARY KEY, device_id TEXT, site TEXT, "
                      "location TEXT, scale TEXT, value INT, sentiment TEXT, ts TEXT, received_at TEXT, seq INT, "
                      "boot_id TEXT, mono DOUBLE PRECISION)")
        self.conn.commit()

    def insert(self, rows: list[tuple[Any, ...]]) -> None:
        with self.conn.cursor() as c:
            c.executemany(f"INSERT INTO {self.schema}.raw ({_RAW_COLS}) VALUES ({','.join(['%s'] * 12)})", rows)
        self.conn.commit()

    def close(self) -> None:
        with self.conn.cursor() as c:
            c.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        self.conn.commit()
        self.conn.close()


def central_store(target: str | Path, schema: str | None) -> CentralStore | None:
    """Central's store for ``target``; None where this central has no PostgreSQL store yet (the hook)."""
    if schema is None:
        return CentralStore(target)
    if "schema" not in inspect.signature(CentralStore.__init__).parameters:
        return None
    return CentralStore(target, schema=schema)  # type: ignore[call-arg]


Messages = list[tuple[str, bytes, list[tuple[Any, ...]]]]


def _pair(service: CentralService, raw: Any, messages: Messages, raw_messages: Messages,
          burst: int) -> tuple[float, float]:
    """Seconds for all messages through central and through the raw insert, alternating burst by burst.

    ``burst`` 0: one message per ``handle`` call, window rules after each. Otherwise ``handle_many`` of
    ``burst`` messages with the window rules deferred and run every ``service.window_interval`` of central's
    time, and once at the end (counted)."""
    t_sub = t_raw = 0.0
    since_windows = 0.0
    step = burst or 1
    for i in range(0, len(messages), step):
        chunk = messages[i:i + step]
        t0 = time.perf_counter()
        for _, _, rows in raw_messages[i:i + step]:
            raw.insert(rows)
        t1 = time.perf_counter()
        if burst:
            service.handle_many([(topic, payload) for topic, payload, _ in chunk], defer_windows=True)
        else:
            service.handle(chunk[0][0], chunk[0][1])
        t2 = time.perf_counter()
        t_raw += t1 - t0
        t_sub += t2 - t1
        since_windows += t2 - t1
        if burst and since_windows >= service.window_interval:
            t3 = time.perf_counter()
            service.flush_windows()
            since_windows = 0.0
            t_sub += time.perf_counter() - t3
    t3 = time.perf_counter()
    service.flush_windows()
    t_sub += time.perf_counter() - t3
    return t_sub, t_raw


def _backend(name: str, store: CentralStore, raw: Any, *, messages: int, batch: int, repeats: int,
             burst: int = 0, late: bool = False) -> dict[str, Any]:
    service = CentralService(store, BrokerSettings.from_url("mqtt://127.0.0.1:1"), client_id="bench-ingest")
    sub_rps: list[float] = []
    raw_rps: list[float] = []
    for rep in range(repeats):
        msgs = _messages(messages, batch, f"ingest-{name}-{rep}", late=late)
        raw_msgs = _messages(messages, batch, f"raw-{name}-{rep}", late=late)
        t_sub, t_raw = _pair(service, raw, msgs, raw_msgs, burst)
        n = messages * batch
        sub_rps.append(n / t_sub)
        raw_rps.append(n / t_raw)
    stored = store.count("ratings")
    vs = ratios(sub_rps, raw_rps)
    return {"central_rps": median(sub_rps), "raw_rps": median(raw_rps), "vs_raw": median(vs),
            "vs_raw_spread": spread(vs), "stored": stored, "alerts": store.count("alerts"), "burst": burst,
            "ratings_per_message": batch, "messages": messages, "late": late, "per_repeat": sub_rps}


# (key, ratings per message, messages multiplier, burst, late stamps): the fresh burst figures are the target's
SQLITE_RUNS = (("sqlite_burst", 100, 1, BURST, False), ("sqlite_burst_late", 100, 1, BURST, True),
               ("sqlite", 100, 1, 0, False), ("sqlite_single", 1, 5, 0, False))
PG_RUNS = (("postgres_burst", 100, 1, BURST, False), ("postgres_burst_late", 100, 1, BURST, True),
           ("postgres", 100, 1, 0, False), ("postgres_single", 1, 5, 0, False))


def _drop(store: CentralStore) -> None:
    drop = getattr(store, "drop", None)  # the PostgreSQL store drops its schema; SQLite has nothing to drop
    if callable(drop):
        drop()
    store.close()


def run(workdir: Path, *, messages: int, batch: int = 100, repeats: int = 3) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"what": "central ingest per worker, CentralService without the network",
                           "messages": messages, "batch": batch, "repeats": repeats, "burst": BURST,
                           "target": f"burst of {BURST} via handle_many ≥ {TARGET_VS_RAW}× raw executemany, "
                                     "SQLite and PostgreSQL"}
    for key, size, mult, burst, late in SQLITE_RUNS:
        # A fresh store each, so one figure does not inherit the other's alerts.
        store = central_store(workdir / f"{key}.db", None)
        assert store is not None
        raw = RawSqlite(workdir / f"raw-{key}.db")
        try:
            out[key] = _backend(key, store, raw, messages=messages * mult, batch=size * batch // 100,
                                repeats=repeats, burst=burst, late=late)
        finally:
            raw.close()
            store.close()
    schema = f"bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        raw_pg = RawPostgres(PG_URL, schema + "_raw")
    except Exception as e:  # no server, no driver
        out["postgres_burst"] = {"unavailable": f"PostgreSQL at {PG_URL}: {e}"}
        _verdict(out)
        return out
    try:
        for n, (key, size, mult, burst, late) in enumerate(PG_RUNS):
            pg_store = central_store(PG_URL, f"{schema}_{n}")
            if pg_store is None:
                out[key] = {"unavailable": "this central has no PostgreSQL store (CentralStore takes no schema=)"}
                continue
            try:
                out[key] = _backend(key, pg_store, raw_pg, messages=messages * mult, batch=size * batch // 100,
                                    repeats=repeats, burst=burst, late=late)
            finally:
                _drop(pg_store)
    finally:
        raw_pg.close()
    _verdict(out)
    return out


def _verdict(out: dict[str, Any]) -> None:
    figures = [out[k]["vs_raw"] for k in ("sqlite_burst", "postgres_burst") if "vs_raw" in (out.get(k) or {})]
    out["met"] = len(figures) == 2 and all(v >= TARGET_VS_RAW for v in figures)


def profile(workdir: Path, *, messages: int) -> dict[str, str]:
    """Where central's time goes in the burst path (cProfile, top by own time), SQLite and PostgreSQL."""
    import cProfile

    from bench.profiles import top

    workdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}
    for key in ("sqlite_burst", "postgres_burst"):
        try:
            store = central_store(workdir / "profile.db" if key == "sqlite_burst" else PG_URL,
                                  None if key == "sqlite_burst" else f"bench_prof_{os.getpid()}_{uuid.uuid4().hex[:6]}")
        except Exception as e:
            out[key] = f"(not profiled: {type(e).__name__}: {e})"
            continue
        if store is None:
            continue
        try:
            service = CentralService(store, BrokerSettings.from_url("mqtt://127.0.0.1:1"), client_id="bench-prof")
            msgs = _messages(messages, 100, f"prof-{key}")
            prof = cProfile.Profile()
            prof.enable()
            for i in range(0, len(msgs), BURST):
                service.handle_many([(t, p) for t, p, _ in msgs[i:i + BURST]], defer_windows=True)
            service.flush_windows()
            prof.disable()
            out[key] = top(prof, 18) + "\n\nby cumulative time:\n" + top(prof, 22, sort="cumtime")
        finally:
            _drop(store)
    return out
