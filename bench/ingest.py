"""Central ingest per worker: ratings/s through ``CentralService.handle`` into SQLite and into PostgreSQL.

``handle`` is what a worker does per MQTT message (validate, store in one transaction, receipt, alerts),
measured without the network so the figure is the store's and the validation's alone. Baseline in the
same run, message by message interleaved: a raw ``executemany`` of the same rows in one transaction into a
bare table of the same database (SQLite WAL synchronous=FULL, or PostgreSQL's defaults).
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
from bench.stats import median, ratios
from central.service import CentralService
from central.store import CentralStore
from smileloop import topics
from smileloop.mqtt import BrokerSettings

PG_URL = os.environ.get("SMILELOOP_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
_RAW_COLS = "id, device_id, site, location, scale, value, sentiment, ts, received_at, seq, boot_id, mono"


SITES = 50  # a worker serves many sites; alerts (one rating in five is unhappy) spread over them


def _messages(n: int, batch: int, device: str) -> list[tuple[str, bytes, list[tuple[Any, ...]]]]:
    out = []
    for m in range(n):
        site, dev = f"{device}-s{m % SITES}", f"{device}-d{m % SITES}"
        ratings = [harness.wire_rating(m * batch + j + 1, value=(1, 3, 4, 4, 4)[(m + j) % 5]) for j in range(batch)]
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


def _pair(service: CentralService, raw: Any, messages: list[tuple[str, bytes, list[tuple[Any, ...]]]],
          raw_messages: list[tuple[str, bytes, list[tuple[Any, ...]]]]) -> tuple[float, float]:
    """Seconds for all messages through central and through the raw insert, alternating message by message."""
    t_sub = t_raw = 0.0
    for (topic, payload, _), (_, _, rows) in zip(messages, raw_messages, strict=True):
        t0 = time.perf_counter()
        raw.insert(rows)
        t1 = time.perf_counter()
        service.handle(topic, payload)
        t2 = time.perf_counter()
        t_raw += t1 - t0
        t_sub += t2 - t1
    return t_sub, t_raw


def _backend(name: str, store: CentralStore, raw: Any, *, messages: int, batch: int, repeats: int) -> dict[str, Any]:
    service = CentralService(store, BrokerSettings.from_url("mqtt://127.0.0.1:1"), client_id="bench-ingest")
    sub_rps: list[float] = []
    raw_rps: list[float] = []
    for rep in range(repeats):
        msgs = _messages(messages, batch, f"ingest-{name}-{rep}")
        raw_msgs = _messages(messages, batch, f"raw-{name}-{rep}")
        t_sub, t_raw = _pair(service, raw, msgs, raw_msgs)
        n = messages * batch
        sub_rps.append(n / t_sub)
        raw_rps.append(n / t_raw)
    stored = store.count("ratings")
    return {"central_rps": median(sub_rps), "raw_rps": median(raw_rps),
            "vs_raw": median(ratios(sub_rps, raw_rps)), "stored": stored, "per_repeat": sub_rps}


def _drop(store: CentralStore) -> None:
    drop = getattr(store, "drop", None)  # the PostgreSQL store drops its schema; SQLite has nothing to drop
    if callable(drop):
        drop()
    store.close()


def run(workdir: Path, *, messages: int, batch: int = 100, repeats: int = 3) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"what": "central ingest per worker, CentralService.handle without the network",
                           "messages": messages, "batch": batch, "repeats": repeats}
    for key, size, n in (("sqlite", batch, messages), ("sqlite_single", 1, messages * 5)):
        # sqlite_single: live traffic, one rating per message, so the per-message cost shows. A fresh store
        # each, so one figure does not inherit the other's alerts.
        store = central_store(workdir / f"{key}.db", None)
        assert store is not None
        raw = RawSqlite(workdir / f"raw-{key}.db")
        try:
            out[key] = _backend(key, store, raw, messages=n, batch=size, repeats=repeats)
        finally:
            raw.close()
            store.close()
    schema = f"bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        raw_pg = RawPostgres(PG_URL, schema + "_raw")
    except Exception as e:  # no server, no driver
        out["postgres"] = {"unavailable": f"PostgreSQL at {PG_URL}: {e}"}
        return out
    try:
        pg_store = central_store(PG_URL, schema)
        if pg_store is None:
            out["postgres"] = {"unavailable": "this central has no PostgreSQL store yet (CentralStore takes no "
                                              "schema=); raw psycopg baseline measured only"}
            t0 = time.perf_counter()
            for _, _, rows in _messages(messages, batch, "raw-pg"):
                raw_pg.insert(rows)
            out["postgres"]["raw_rps"] = messages * batch / (time.perf_counter() - t0)
            return out
        try:
            out["postgres"] = _backend("pg", pg_store, raw_pg, messages=messages, batch=batch, repeats=repeats)
        finally:
            _drop(pg_store)
        pg_single = central_store(PG_URL, schema + "_1")
        assert pg_single is not None
        try:
            out["postgres_single"] = _backend("pg1", pg_single, raw_pg, messages=messages * 5, batch=1,
                                              repeats=repeats)
        finally:
            _drop(pg_single)
    finally:
        raw_pg.close()
    return out
