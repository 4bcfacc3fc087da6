"""Drain: a backlog from device SQLite through Mosquitto into central's store, durable at both ends.

Subject: ``SyncAgent.drain`` on a pre-filled device store, central as its own process storing with
``synchronous=FULL``; timed until every rating is receipted. The baseline the target is set against: the
**bare durable subscriber** (:mod:`bench.bare_subscriber`: paho, json, one ``executemany`` per message in its
own transaction, a receipt, manual ack) in its own process, drained from the same backlog by the same
``SyncAgent`` through the same kind of private broker. Target: ≥ 0.5× the bare subscriber.

The pre-filled ratings carry old stamps (a :class:`FakeClock` on 2026-11-24): central files ratings arriving
more than 15 minutes late into one "backlog arrived" summary per location instead of an alert each. The same
drain with *fresh* stamps (the clock set so the whole backlog was made in the last few minutes, re-made just
before each such drain) measures the live path: every unhappy rating opens its own alert.

Kept from earlier runs, same broker as the central drain: (a) raw paho QoS 1 publishing of the same ratings as
pre-built batches (≥ 0.25× was the old target) and (b) one QoS 1 message per rating, waiting for each PUBACK
(≥ 10×).

The agent's ``max_rate`` (a politeness cap of 2,000 ratings/s by default) is lifted here: the figure is what
the pipeline can do, not what the cap allows.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench import harness
from bench.stats import median, ratios, spread
from device.recorder import Recorder
from device.store import DeviceStore
from smileloop_core.clock import FakeClock
from sync_agent.agent import SyncAgent
from sync_agent.errors import SyncError

TARGET_VS_BARE = 0.5
TARGET_VS_RAW = 0.25
TARGET_VS_NAIVE = 10.0
FRESH_SPAN_S = 300.0  # the fresh backlog was made over the last five minutes
SYNC = {"batch_size": 100, "max_inflight": 20, "max_rate": 1e9, "ack_timeout": 120.0, "batch_delay": 0.0}


MIX = (1, 2, 3, 3, 4, 4, 4, 4)  # one visitor in four unhappy


def prefill(path: Path, config: Any, n: int, mix: tuple[int, ...] = MIX, *, fresh: bool = False) -> None:
    """``n`` taps through the real Recorder, one every 0.5 s from 2026-11-24 09:00 (written once, copied for each
    repeat); ``fresh``: spread over the last :data:`FRESH_SPAN_S` seconds, the last one now."""
    path.unlink(missing_ok=True)
    store = DeviceStore(path, synchronous="NORMAL")
    step = FRESH_SPAN_S / n if fresh else 0.5
    clock = FakeClock(datetime.now(UTC) - timedelta(seconds=step * n)) if fresh else FakeClock()
    recorder = Recorder(store, config, clock=clock)
    for i in range(n):
        recorder.record(mix[i % len(mix)])
        clock.advance(step)
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # one self-contained file to copy
    store.close()


def wire_batches(path: Path, batch: int) -> list[list[dict[str, Any]]]:
    """The backlog's ratings in wire form, grouped as the agent would send them."""
    store = DeviceStore(path, synchronous="NORMAL")
    try:
        ratings = [r.to_wire() for r in store.next_batch(10**9)]
    finally:
        store.close()
    return [ratings[i:i + batch] for i in range(0, len(ratings), batch)]


def _client(url: str, cid: str, inflight: int) -> mqtt.Client:
    host, port = harness._host_port(url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(inflight)
    c.max_queued_messages_set(0)
    c.connect(host, port)
    while not c.is_connected():
        c.loop(0.05)
    return c


def raw_batches(url: str, payloads: list[bytes], inflight: int) -> float:
    """(a) pre-built batches, QoS 1, ``inflight`` at a time, one thread; seconds until the last PUBACK."""
    c = _client(url, "bench-raw", inflight)
    acked = 0

    def on_publish(*_: Any) -> None:
        nonlocal acked
        acked += 1
    c.on_publish = on_publish
    t0 = time.perf_counter()
    sent = 0
    while acked < len(payloads):
        while sent < len(payloads) and sent - acked < inflight:
            c.publish("bench/raw/ratings", payloads[sent], qos=1)
            sent += 1
        c.loop(0.01)
    took = time.perf_counter() - t0
    c.disconnect()
    return took


def naive(url: str, payloads: list[bytes], deadline_s: float) -> tuple[int, float]:
    """(b) one QoS 1 message per rating, waiting for each PUBACK; (messages, seconds), bounded in time."""
    c = _client(url, "bench-naive", 1)
    done = 0

    def on_publish(*_: Any) -> None:
        nonlocal done
        done += 1
    c.on_publish = on_publish
    t0 = time.perf_counter()
    for i, p in enumerate(payloads):
        c.publish("bench/naive/ratings", p, qos=1)
        while done <= i:
            c.loop(0.01)
        if time.perf_counter() - t0 > deadline_s:
            break
    took = time.perf_counter() - t0
    c.disconnect()
    return done, took


def _drain_once(work: Path, url: str, template: Path, max_s: float, device: str,
                pids: dict[str, int]) -> dict[str, Any]:
    """One device drains a copy of ``template`` into whatever subscriber serves ``url``: its rate (ratings
    receipted / seconds), whether it hit ``max_s``, and the CPU seconds of ``pids`` and of this process (the
    agent) over the drain."""
    config = harness.device_config(work, url, device_id=device, **SYNC)
    shutil.copy(template, config.storage.path)
    store = DeviceStore(config.storage.path, synchronous="NORMAL")
    total = store.backlog().undelivered
    agent = SyncAgent(config, store)
    meter = harness.CpuMeter({**pids, "agent": os.getpid()}).start()
    t0 = time.perf_counter()
    late = False
    try:
        agent.drain(timeout=max_s)
    except SyncError:
        late = True
    took = time.perf_counter() - t0
    cpu = meter.stop()
    done = total - store.backlog().undelivered
    store.close()
    per_k = {k.replace("_cpu_s", "_cpu_s_per_1k"): 1000 * v / done for k, v in cpu.items()
             if k.endswith("_cpu_s") and done}
    return {"rps": done / took, "s": took, "receipted": done, "timed_out": late, **cpu, **per_k}


def central_count(db: Path, device: str) -> tuple[int, int]:
    """(rows, distinct ids) stored centrally for one device."""
    conn = sqlite3.connect(str(db), timeout=30)
    try:
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT id) FROM ratings WHERE device_id = ?",
                                      (device,)).fetchone()
    finally:
        conn.close()
    return int(rows), int(distinct)


def alert_kinds(db: Path) -> dict[str, int]:
    """Alerts central opened, by kind: per-rating alerts for fresh ratings, a summary per location for late ones."""
    conn = sqlite3.connect(str(db), timeout=30)
    try:
        return {k: int(n) for k, n in conn.execute("SELECT kind, count(*) FROM alerts GROUP BY kind")}
    finally:
        conn.close()


def _bare(work: Path, template: Path, max_s: float) -> dict[str, Any]:
    """The baseline: the same backlog drained by the same agent into the bare durable subscriber."""
    with harness.broker(work / "broker-bare") as b:
        sub = harness.BareProcess(b.url, work / "bare.db")
        try:
            harness.probe_central(b.url)
            out = _drain_once(work / "bare", b.url, template, max_s, "kiosk-bare",
                              {"subscriber": sub.pid, "broker": b.proc.pid if b.proc else 0})
        finally:
            sub.stop()
    conn = sqlite3.connect(str(work / "bare.db"), timeout=30)
    try:
        out["stored"] = conn.execute("SELECT count(*) FROM ratings WHERE device_id = 'kiosk-bare'").fetchone()[0]
    finally:
        conn.close()
    return out


def _central(work: Path, template: Path, max_s: float, device: str, *, name: str,
             before: Any = None) -> dict[str, Any]:
    """The subject: the backlog drained into central (its own process, a fresh store); ``before(url)`` runs once
    central is up and before the drain (the raw baseline on the same broker, or re-making a fresh backlog)."""
    db = work / f"{name}.db"
    with harness.broker(work / f"broker-{name}") as b:
        central = harness.CentralProcess(b.url, db)
        try:
            harness.probe_central(b.url)
            extra = before(b.url) if before else {}
            out = _drain_once(work / name, b.url, template, max_s, device,
                              {"central": central.pid, "broker": b.proc.pid if b.proc else 0})
        finally:
            central.stop()
    out["stored"], out["distinct"] = central_count(db, device)
    out["alerts"] = alert_kinds(db)
    return {**out, **(extra or {})}


def run(workdir: Path, *, ratings: int, repeats: int, naive_max_s: float = 5.0,
        max_s: float = 180.0, fresh: bool = True) -> dict[str, Any]:
    """Interleaved repeats (the order flips each repeat: A B C, C B A) of the bare subscriber's drain, central's
    drain of the old-stamped backlog (with the raw and naive baselines on its broker) and central's drain of a
    fresh one. A drain still going after ``max_s`` is stopped and its rate is what had been receipted by then
    (``timed_out``): bounded, and still a figure."""
    workdir.mkdir(parents=True, exist_ok=True)
    template = workdir / "backlog.db"
    fresh_template = workdir / "fresh.db"
    config0 = harness.device_config(workdir / "prefill", "mqtt://127.0.0.1:1", **SYNC)
    t0 = time.perf_counter()
    prefill(template, config0, ratings)
    prefill_s = time.perf_counter() - t0
    batches = wire_batches(template, SYNC["batch_size"])
    device = "kiosk-drain"
    payloads = [harness.ratings_message(device, b) for b in batches]
    singles = [harness.ratings_message(device, [r]) for b in batches for r in b]

    def raw_first(url: str) -> dict[str, Any]:
        return {"raw_rps": ratings / raw_batches(url, payloads, SYNC["max_inflight"])}

    def remake_fresh(url: str) -> dict[str, Any]:
        t = time.perf_counter()
        prefill(fresh_template, config0, ratings, fresh=True)  # stamped up to now: central sees live traffic
        return {"prefill_s": time.perf_counter() - t}

    rows: list[dict[str, Any]] = []
    for rep in range(repeats):
        work = workdir / f"rep{rep}"
        steps = ["bare", "central", "fresh"] if fresh else ["bare", "central"]
        row: dict[str, Any] = {"order": steps if rep % 2 == 0 else steps[::-1]}
        for step in row["order"]:
            if step == "bare":
                row["bare"] = _bare(work, template, max_s)
            elif step == "central":
                row["central"] = _central(work, template, max_s, device, name="central",
                                          before=raw_first)
                with harness.broker(work / "broker-naive") as b:
                    n_naive, naive_s = naive(b.url, singles, naive_max_s)
                row["naive_rps"], row["naive_messages"] = n_naive / naive_s, n_naive
            else:
                row["fresh"] = _central(work, fresh_template, max_s, "kiosk-fresh", name="fresh",
                                        before=remake_fresh)
        rows.append(row)
        shutil.rmtree(work, ignore_errors=True)

    def col(key: str, field: str = "rps") -> list[float]:
        return [r[key][field] for r in rows if key in r]

    drain_rps, bare_rps, raw_rps = col("central"), col("bare"), col("central", "raw_rps")
    naive_rps = [r["naive_rps"] for r in rows]
    vs_bare = ratios(drain_rps, bare_rps)
    out: dict[str, Any] = {
        "what": "backlog drain, device SQLite → SyncAgent → Mosquitto → central SQLite, receipted",
        "ratings": ratings, "repeats": repeats, "prefill_s": prefill_s, "sync": SYNC,
        "subscriber": "bench/bare_subscriber.py: paho MQTT v5, QoS 1, persistent session, manual ack after "
                      "commit; json.loads, one INSERT OR IGNORE executemany per 100-rating message in its own "
                      "transaction (WAL, synchronous=FULL), a receipt per message",
        "drain_rps": median(drain_rps), "bare_rps": median(bare_rps),
        "vs_bare": median(vs_bare), "vs_bare_spread": spread(vs_bare),
        "raw_rps": median(raw_rps), "naive_rps": median(naive_rps),
        "vs_raw": median(ratios(drain_rps, raw_rps)), "vs_naive": median(ratios(drain_rps, naive_rps)),
        "timed_out": any(r["central"]["timed_out"] for r in rows),
        "bare_timed_out": any(r["bare"]["timed_out"] for r in rows),
        "receipted": min(col("central", "receipted")),
        # receipted by central yet not in its table; stored twice
        "lost": max(max(0, r["central"]["receipted"] - r["central"]["distinct"]) for r in rows),
        "duplicated": max(r["central"]["stored"] - r["central"]["distinct"] for r in rows),
        "alerts": rows[-1]["central"]["alerts"],
        "central_cpu_pct": median(col("central", "central_cpu_pct")),
        "broker_cpu_pct": median(col("central", "broker_cpu_pct")),
        "cpu_s_per_1k": {
            "central": {k: median(col("central", f"{k}_cpu_s_per_1k")) for k in ("central", "broker", "agent")},
            "bare": {k: median(col("bare", f"{k}_cpu_s_per_1k")) for k in ("subscriber", "broker", "agent")},
        },
        "target": f"≥ {TARGET_VS_BARE}× the bare durable subscriber",
        "met": median(vs_bare) >= TARGET_VS_BARE,
        "repeats_detail": rows,
    }
    if fresh:
        fresh_rps = col("fresh")
        vs = ratios(fresh_rps, bare_rps)
        out.update({"fresh_rps": median(fresh_rps), "fresh_vs_bare": median(vs), "fresh_vs_bare_spread": spread(vs),
                    "fresh_timed_out": any(r["fresh"]["timed_out"] for r in rows),
                    "fresh_alerts": rows[-1]["fresh"]["alerts"],
                    "fresh_lost": max(max(0, r["fresh"]["receipted"] - r["fresh"]["distinct"]) for r in rows),
                    "fresh_duplicated": max(r["fresh"]["stored"] - r["fresh"]["distinct"] for r in rows)})
        out["cpu_s_per_1k"]["fresh"] = {k: median(col("fresh", f"{k}_cpu_s_per_1k"))
                                        for k in ("central", "broker", "agent")}
    return out


def profile(workdir: Path, *, ratings: int, max_s: float = 60.0) -> dict[str, str]:
    """Where a drain's time goes: the sync agent (in this process) and central (its own process), profiled."""
    from bench.profiles import top

    workdir.mkdir(parents=True, exist_ok=True)
    template = workdir / "backlog.db"
    prefill(template, harness.device_config(workdir / "prefill", "mqtt://127.0.0.1:1", **SYNC), ratings)
    central_prof = workdir / "central.prof"
    with harness.broker(workdir / "broker") as b:
        central = harness.CentralProcess(b.url, workdir / "central.db", profile=central_prof)
        try:
            harness.probe_central(b.url)
            config = harness.device_config(workdir / "device", b.url, device_id="kiosk-profile", **SYNC)
            shutil.copy(template, config.storage.path)
            store = DeviceStore(config.storage.path, synchronous="NORMAL")
            agent = SyncAgent(config, store)
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
            try:
                agent.drain(timeout=max_s)
            except SyncError:
                pass  # the profile of a drain too slow to finish is the point
            finally:
                prof.disable()
                store.close()
        finally:
            central.stop()
    return {"sync_agent": top(prof), "central": top(central_prof) if central_prof.exists() else "(no profile written)"}
