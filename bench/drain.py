"""Drain: a backlog from device SQLite through Mosquitto into central's store, durable at both ends.

Subject: ``SyncAgent.drain`` on a pre-filled device store, central as its own process storing with
``synchronous=FULL``; timed until every rating is receipted. Baselines in the same run, on the same broker:
(a) raw paho QoS 1 publishing of the same ratings as pre-built batches of ``batch_size`` (JSON encoded
before the clock starts, ``max_inflight`` in flight), and (b) a naive publisher sending one QoS 1 message
per rating and waiting for each PUBACK. Targets: ≥ 0.25× (a) and ≥ 10× (b).

The agent's ``max_rate`` (a politeness cap of 2,000 ratings/s by default) is lifted here: the figure is what
the pipeline can do, not what the cap allows.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench import harness
from bench.stats import median, ratios
from device.clock import FakeClock
from device.recorder import Recorder
from device.store import DeviceStore
from sync_agent.agent import SyncAgent
from sync_agent.errors import SyncError

TARGET_VS_RAW = 0.25
TARGET_VS_NAIVE = 10.0
SYNC = {"batch_size": 100, "max_inflight": 20, "max_rate": 1e9, "ack_timeout": 120.0, "batch_delay": 0.0}


MIX = (1, 2, 3, 3, 4, 4, 4, 4)  # one visitor in four unhappy
HAPPY = (3, 4, 4, 4)  # no alerts: what the transport and the agent do without central's alert work


def prefill(path: Path, config: Any, n: int, mix: tuple[int, ...] = MIX) -> None:
    """``n`` taps through the real Recorder, written once and copied for each repeat."""
    store = DeviceStore(path, synchronous="NORMAL")
    clock = FakeClock()
    recorder = Recorder(store, config, clock=clock)
    for i in range(n):
        recorder.record(mix[i % len(mix)])
        clock.advance(0.5)
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


def _drain_once(work: Path, url: str, template: Path, max_s: float) -> tuple[float, int, bool]:
    """One more device drains ``template`` into the running central: (ratings/s, receipted, timed out)."""
    config = harness.device_config(work, url, device_id="kiosk-happy", **SYNC)
    shutil.copy(template, config.storage.path)
    store = DeviceStore(config.storage.path, synchronous="NORMAL")
    total = store.backlog().undelivered
    t0 = time.perf_counter()
    late = False
    try:
        SyncAgent(config, store).drain(timeout=max_s)
    except SyncError:
        late = True
    took = time.perf_counter() - t0
    done = total - store.backlog().undelivered
    store.close()
    return done / took, done, late


def central_count(db: Path, device: str) -> tuple[int, int]:
    """(rows, distinct ids) stored centrally for one device."""
    conn = sqlite3.connect(str(db), timeout=30)
    try:
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT id) FROM ratings WHERE device_id = ?",
                                      (device,)).fetchone()
    finally:
        conn.close()
    return int(rows), int(distinct)


def run(workdir: Path, *, ratings: int, repeats: int, naive_max_s: float = 5.0,
        max_s: float = 180.0) -> dict[str, Any]:
    """Interleaved repeats of (a), the drain, (b). A drain still going after ``max_s`` is stopped and its rate
    is what central had receipted by then (``timed_out``): bounded, and still a figure."""
    workdir.mkdir(parents=True, exist_ok=True)
    template = workdir / "backlog.db"
    config0 = harness.device_config(workdir / "prefill", "mqtt://127.0.0.1:1", **SYNC)
    t0 = time.perf_counter()
    prefill(template, config0, ratings)
    prefill_s = time.perf_counter() - t0
    happy = workdir / "happy.db"
    prefill(happy, config0, ratings, HAPPY)
    batches = wire_batches(template, SYNC["batch_size"])
    device = "kiosk-drain"
    payloads = [harness.ratings_message(device, b) for b in batches]
    singles = [harness.ratings_message(device, [r]) for b in batches for r in b]
    rows: list[dict[str, Any]] = []
    for rep in range(repeats):
        work = workdir / f"rep{rep}"
        with harness.broker(work / "broker") as b:
            central = harness.CentralProcess(b.url, work / "central.db")
            try:
                harness.probe_central(b.url)
                raw_s = raw_batches(b.url, payloads, SYNC["max_inflight"])
                config = harness.device_config(work / "device", b.url, device_id=device, **SYNC)
                shutil.copy(template, config.storage.path)
                store = DeviceStore(config.storage.path, synchronous="NORMAL")
                agent = SyncAgent(config, store)
                meter = harness.CpuMeter({"central": central.pid, "broker": b.proc.pid if b.proc else 0}).start()
                t0 = time.perf_counter()
                timed_out = False
                try:
                    agent.drain(timeout=max_s)
                except SyncError:
                    timed_out = True
                drain_s = time.perf_counter() - t0
                cpu = meter.stop()
                done = ratings - store.backlog().undelivered
                store.close()
                n_naive, naive_s = naive(b.url, singles, naive_max_s)
            finally:
                central.stop()
            stored, distinct = central_count(work / "central.db", device)
        with harness.broker(work / "broker-happy") as b:  # a fresh central: nothing queued from the drain above
            central = harness.CentralProcess(b.url, work / "central-happy.db")
            try:
                harness.probe_central(b.url)
                happy_rps, happy_done, happy_late = _drain_once(work / "happy", b.url, happy, max_s)
            finally:
                central.stop()
        rows.append({"raw_rps": ratings / raw_s, "drain_rps": done / drain_s, "naive_rps": n_naive / naive_s,
                     "drain_s": drain_s, "receipted": done, "timed_out": timed_out, "stored": stored,
                     "distinct": distinct, "naive_messages": n_naive, "happy_rps": happy_rps,
                     "happy_receipted": happy_done, "happy_timed_out": happy_late, **cpu})
        shutil.rmtree(work, ignore_errors=True)
    vs_raw = median(ratios([r["drain_rps"] for r in rows], [r["raw_rps"] for r in rows]))
    vs_naive = median(ratios([r["drain_rps"] for r in rows], [r["naive_rps"] for r in rows]))
    return {
        "what": "backlog drain, device SQLite → Mosquitto → central SQLite, receipted",
        "ratings": ratings, "repeats": repeats, "prefill_s": prefill_s, "sync": SYNC,
        "drain_rps": median([r["drain_rps"] for r in rows]), "raw_rps": median([r["raw_rps"] for r in rows]),
        "naive_rps": median([r["naive_rps"] for r in rows]),
        "vs_raw": vs_raw, "vs_naive": vs_naive,
        # the same backlog with no negative ratings, so no alerts: the transport and the agent on their own
        "happy_rps": median([r["happy_rps"] for r in rows]),
        "happy_vs_raw": median(ratios([r["happy_rps"] for r in rows], [r["raw_rps"] for r in rows])),
        "happy_vs_naive": median(ratios([r["happy_rps"] for r in rows], [r["naive_rps"] for r in rows])),
        "happy_timed_out": any(r["happy_timed_out"] for r in rows),
        "timed_out": any(r["timed_out"] for r in rows), "receipted": min(r["receipted"] for r in rows),
        "lost": max(max(0, r["receipted"] - r["distinct"]) for r in rows),  # receipted by central yet not in its table
        "duplicated": max(r["stored"] - r["distinct"] for r in rows),
        "central_cpu_pct": median([r["central_cpu_pct"] for r in rows]),
        "broker_cpu_pct": median([r["broker_cpu_pct"] for r in rows]),
        "target": f"≥ {TARGET_VS_RAW}× raw batches and ≥ {TARGET_VS_NAIVE:g}× naive",
        "met": vs_raw >= TARGET_VS_RAW and vs_naive >= TARGET_VS_NAIVE,
        "repeats_detail": rows,
    }


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
