"""Cluster: the same drain through a 3-node NATS cluster and through one Mosquitto, in one run, with one and two
central workers — so the figures are ratios between neighbours measured minutes apart on the same machine.

Subject: ``devices`` real sync agents (threads of this process), each draining a copy of the same pre-filled
backlog, all at once, into central (its own processes, one SQLite store), until every rating is receipted.
On Mosquitto the workers share an MQTT v5 shared subscription; on NATS they share one JetStream durable pull
consumer (``smileloop central --nats``), the devices speak MQTT 3.1.1 to the nodes (spread over the three) with
passwords checked by bcrypt, and the ratings stream keeps 3 copies. Loopback only; every process stopped.

Then (``fleet_devices``) the fleet of bench/fleet.py on both: that many simulated devices with ``fleet_backlog``
ratings each reconnect at once and send until central receipted every rating; on Mosquitto exactly as
bench/fleet.py runs it (MQTT v5, no passwords), on the cluster with MQTT 3.1.1, each device its own username and
password (bcrypt cost 6 hashes in the nodes' config, as provisioning writes them) and device ``i`` on node
``i % 3``; central stores into SQLite on both. The same figures for both: seconds and ratings/s until all are
receipted, when all were connected, the curve of devices done, lost and stored twice, CPU per process.

The 3 nodes, the workers, the devices and the bench share the machine's cores: on a 2-core machine the cluster
figure is what three servers cost on one host, not what three hosts would give (docs/SCALE.md).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from bench import fleet, harness
from bench.drain import prefill
from bench.stats import median, ratios, spread
from central.nats_source import DURABLE, STREAM
from device.config import parse_config
from device.store import DeviceStore
from provisioning.credentials import DEVICE_BCRYPT_COST, bcrypt_hash
from provisioning.inventory import Device
from provisioning.nats import NatsNode, write_nats_config
from smileloop_core.mosquitto import reserve_port
from sync_agent.agent import SyncAgent
from sync_agent.errors import SyncError

NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"
SYNC: dict[str, Any] = {"batch_size": 100, "max_inflight": 20, "max_rate": 1e9, "ack_timeout": 30.0, "batch_delay": 0.0,
        "reconnect_min": 0.1, "reconnect_max": 1.0}
SITE = harness.BENCH_SITE
FLEET_PREFIX = "flt"  # the simulated fleet's device ids on the cluster: flt-00000, …
# 2,000 devices at once never converged on the shared 2-core machine with nats-server 2.9.10 (300 s, ~70,000
# connection attempts: each session and QoS 1 subscription is a replicated JetStream object, docs/SCALE.md);
# 500 took 17-39 s. Larger fleets are for a cluster on hosts of its own.
FLEET_MAX_DEVICES = 500


def _device(device_id: str, site: str = SITE, location: str = "exit") -> Device:
    return Device(device_id=device_id, site=site, location=location, state="active", scale="smiley4",
                  question={"en": "?"}, languages=("en",), hours={}, timezone="UTC", created_at="2026-12-03",
                  credentials_at=None, revoked_at=None, last_seen=None, last_state=None, cert_serial=None)


def _kiosks(devices: int) -> tuple[list[Device], dict[str, str]]:
    """The drain's sync agents and their hashes (cost 4: a handful of connects, not what is measured here)."""
    return ([_device(f"kiosk-{k}") for k in range(devices)],
            {f"kiosk-{k}": bcrypt_hash(f"pw-{k}", cost=4) for k in range(devices)})


@contextmanager
def nats_cluster(work: Path, devices: Sequence[Device],
                 hashes: Mapping[str, str]) -> Iterator[tuple[list[str], list[str], list[int]]]:
    """Three nodes from provisioning's writer, ``devices`` its users with their bcrypt ``hashes`` (and central,
    password ``central-pw``); (MQTT URLs, NATS URLs, pids), all stopped on exit."""
    reservations = [reserve_port() for _ in range(9)]
    ports = [r.port for r in reservations]
    nodes = [NatsNode(f"n{i + 1}", ports[3 * i], ports[3 * i + 1], ports[3 * i + 2]) for i in range(3)]
    confs, skipped = write_nats_config(work / "nats", nodes, accounts={"central": "central"}, devices=devices,
                                       passwords={"central": bcrypt_hash("central-pw", cost=4), **hashes})
    if skipped:
        raise harness.BenchError(f"left out of the NATS config: {', '.join(skipped[:5])}")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for conf in confs:
            with conf.with_suffix(".log").open("ab") as log:
                procs.append(subprocess.Popen([NATS, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True))
        yield ([f"mqtt://127.0.0.1:{n.mqtt_port}?protocol=3.1.1" for n in nodes],
               [f"nats://127.0.0.1:{n.client_port}" for n in nodes], [p.pid for p in procs])
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for r in reservations:
            r.release()


def _consumer_ready(url: str, timeout: float = 60.0) -> None:
    import nats

    async def quiet(e: Exception) -> None:
        pass  # not listening yet: asked again below

    async def ask() -> bool:
        try:
            nc = await nats.connect(url, user="central", password="central-pw", connect_timeout=1,
                                    allow_reconnect=False, error_cb=quiet)
        except Exception:
            return False
        try:
            await nc.jetstream(timeout=2).consumer_info(STREAM, DURABLE)
            return True
        except Exception:
            return False
        finally:
            await nc.close()
    deadline = time.monotonic() + timeout
    while not asyncio.run(ask()):
        if time.monotonic() > deadline:
            raise harness.BenchError("the NATS workers never made the stream and its consumer")
        time.sleep(0.2)


def _drain(work: Path, templates: list[Path], urls_of: Any, creds: Any, devices: int, max_s: float) -> dict[str, Any]:
    """Every device drains its copy at once; seconds until all are receipted, and what was receipted."""
    agents = []
    for k in range(devices):
        d = work / f"kiosk-{k}"
        d.mkdir(parents=True)
        shutil.copy(templates[k], d / "device.db")  # each device its own ratings (ids are global)
        broker: dict[str, Any] = {"urls": urls_of(k)}
        broker.update(creds(k, d))
        cfg = parse_config({"device": {"id": f"kiosk-{k}", "site": SITE, "location": "exit"}, "broker": broker,
                            "storage": {"path": "device.db"}, "survey": {"response_interval": 0.0},
                            "sync": SYNC}, base=d)
        agents.append(SyncAgent(cfg, DeviceStore(cfg.storage.path, synchronous="NORMAL")))
    total = sum(a.store.backlog().undelivered for a in agents)
    late: list[bool] = []

    def one(agent: SyncAgent) -> None:
        try:
            agent.drain(timeout=max_s)
        except SyncError:
            late.append(True)
    threads = [threading.Thread(target=one, args=(a,)) for a in agents]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - t0
    left = sum(a.store.backlog().undelivered for a in agents)
    for a in agents:
        a.store.close()
    return {"rps": (total - left) / took, "s": took, "receipted": total - left, "timed_out": bool(late)}


def _stored(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(str(db), timeout=30)
    try:
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT id) FROM ratings "
                                      "WHERE device_id LIKE 'kiosk-%'").fetchone()
    finally:
        conn.close()
    return int(rows), int(distinct)


def _mosquitto(work: Path, template: list[Path], devices: int, workers: int, max_s: float) -> dict[str, Any]:
    db = work / "central.db"
    with harness.broker(work / "broker") as b:
        centrals = []
        try:
            for k in range(workers):
                centrals.append(harness.CentralProcess(b.url, db, client_id=f"central-{k}",
                                                       share_group="bench" if workers > 1 else None,
                                                       log=work / f"central-{k}.log"))
                harness.probe_central(b.url)
            out = _drain(work / "devices", template, lambda k: [b.url], lambda k, d: {}, devices, max_s)
        finally:
            for c in centrals:
                c.stop()
    out["stored"], out["distinct"] = _stored(db)
    return out


@contextmanager
def nats_centrals(work: Path, db: Path, workers: int, mqtt_urls: list[str],
                  nats_urls: list[str]) -> Iterator[list[harness.ServiceProcess]]:
    """``workers`` central processes on one shared JetStream consumer, worker k starting at node k; yields once
    the stream and its consumer exist; all stopped on exit."""
    (work / "central.pw").parent.mkdir(parents=True, exist_ok=True)
    (work / "central.pw").write_text("central-pw\n")
    centrals = []
    try:
        for k in range(workers):
            rot = k % 3
            cmd = [sys.executable, "-m", "smileloop", "central", "--db", str(db), "--client-id", f"central-{k}",
                   "--username", "central", "--password-file", str(work / "central.pw"),
                   "--broker", ",".join(mqtt_urls[rot:] + mqtt_urls[:rot]),
                   "--nats", ",".join(nats_urls[rot:] + nats_urls[:rot])]
            centrals.append(harness.ServiceProcess(cmd, work / f"central-{k}.log"))
        _consumer_ready(nats_urls[0])
        yield centrals
    finally:
        for c in centrals:
            c.stop()


def _nats(work: Path, template: list[Path], devices: int, workers: int, max_s: float) -> dict[str, Any]:
    db = work / "central.db"
    with nats_cluster(work, *_kiosks(devices)) as (mqtt_urls, nats_urls, _pids), \
            nats_centrals(work, db, workers, mqtt_urls, nats_urls):
        def creds(k: int, d: Path) -> dict[str, Any]:
            (d / "pw").write_text(f"pw-{k}\n")
            return {"username": f"kiosk-{k}", "password_file": str(d / "pw")}
        out = _drain(work / "devices", template, lambda k: mqtt_urls[k % 3:] + mqtt_urls[:k % 3], creds,
                     devices, max_s)
    out["stored"], out["distinct"] = _stored(db)
    return out


def _fleet_nats(work: Path, *, devices: int, backlog: int, workers: int, timeout: float,
                passwords: Mapping[str, str], hashes: Mapping[str, str]) -> dict[str, Any]:
    """bench/fleet.py's scenario on the cluster: 3.1.1, a password per device, device i on node i % 3."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    db = work / "central.db"
    users = [_device(i, site, loc) for i, site, loc in fleet.identities(devices, FLEET_PREFIX)]
    with nats_cluster(work, users, hashes) as (mqtt_urls, nats_urls, pids), \
            nats_centrals(work, db, workers, mqtt_urls, nats_urls) as centrals:
        f = fleet.Fleet(mqtt_urls, devices, backlog, prefix=FLEET_PREFIX, protocol=mqtt.MQTTv311,
                        passwords=passwords, broker_pids=pids)
        procs = {f"central{k}": c.pid for k, c in enumerate(centrals)}
        procs |= {f"nats{k + 1}": pid for k, pid in enumerate(pids)}
        procs["fleet"] = os.getpid()
        rss0 = sum(harness.rss_mb(pid) for pid in pids)
        meter = harness.CpuMeter(procs).start()
        result = f.run(timeout)
        cpu = meter.stop()
    result["broker_kb_per_device"] = (result["broker_rss_mb"] - rss0) * 1024 / devices
    cpu["broker_cpu_s"] = sum(cpu.pop(f"nats{k + 1}_cpu_s") for k in range(len(pids)))
    cpu["broker_cpu_pct"] = sum(cpu.pop(f"nats{k + 1}_cpu_pct") for k in range(len(pids)))
    check = fleet._check(fleet._stored_rows(db, None, FLEET_PREFIX), f)
    return fleet.figures(result, check, cpu, devices=devices, backlog=backlog, workers=workers, store="sqlite")


def _fleet_mosquitto(work: Path, *, devices: int, backlog: int, workers: int, timeout: float) -> dict[str, Any]:
    """bench/fleet.py's scenario as it runs it (MQTT v5, no passwords), into SQLite like the cluster's."""
    return fleet._scenario(work, devices=devices, backlog=backlog, workers=workers, timeout=timeout,
                           prefix=FLEET_PREFIX)


def run_fleet(workdir: Path, *, devices: int, backlog: int, repeats: int, timeout: float = 300.0) -> dict[str, Any]:
    """The fleet on one Mosquitto and on the cluster, one and two workers each, interleaved."""
    limit = harness.raise_nofile(max(4096, devices * 3 + 256))  # before the nodes start: they inherit it
    if limit < devices * 2 + 64:
        raise harness.BenchError(f"open-file limit {limit} is too low for {devices} devices; raise ulimit -n")
    t0 = time.perf_counter()
    passwords = {i: f"pw-{i}" for i, _, _ in fleet.identities(devices, FLEET_PREFIX)}
    hashes = {i: bcrypt_hash(pw, cost=DEVICE_BCRYPT_COST) for i, pw in passwords.items()}
    hash_s = time.perf_counter() - t0
    rows: dict[str, list[dict[str, Any]]] = {"mosquitto1": [], "mosquitto2": [], "nats1": [], "nats2": []}
    for rep in range(repeats):
        order = list(rows) if rep % 2 == 0 else list(rows)[::-1]
        for name in order:
            work, workers = workdir / f"{name}-{rep}", int(name[-1])
            if name.startswith("mosquitto"):
                rows[name].append(_fleet_mosquitto(work, devices=devices, backlog=backlog, workers=workers,
                                                   timeout=timeout))
            else:
                rows[name].append(_fleet_nats(work, devices=devices, backlog=backlog, workers=workers,
                                              timeout=timeout, passwords=passwords, hashes=hashes))
            shutil.rmtree(work, ignore_errors=True)
    for rs in rows.values():
        for r in rs[:-1]:
            r.pop("done_curve_s", None)
    out: dict[str, Any] = {"what": f"{devices} simulated devices reconnecting at once, {backlog} ratings each, "
                                   "until all are receipted", "devices": devices, "backlog_per_device": backlog,
                           "ratings": devices * backlog, "repeats": repeats, "nofile_limit": limit,
                           "bcrypt_cost": DEVICE_BCRYPT_COST, "bcrypt_hash_ms_per_device": 1e3 * hash_s / devices}
    for name, rs in rows.items():
        out[name] = fleet.summarise(rs)
    for a, b in (("nats1", "mosquitto1"), ("nats2", "mosquitto2"), ("nats2", "nats1"),
                 ("mosquitto2", "mosquitto1")):
        each = spread(ratios([r["ratings_per_s"] for r in rows[a]], [r["ratings_per_s"] for r in rows[b]]))
        out[f"{a}_vs_{b}"], out[f"{a}_vs_{b}_spread"] = each["median"], each
    out["safe"] = all(out[k]["lost"] == 0 and out[k]["duplicated"] == 0 and not out[k]["timed_out"] for k in rows)
    out["repeats_detail"] = rows
    return out


def run(workdir: Path, *, devices: int, ratings: int, repeats: int, max_s: float = 120.0, fleet_devices: int = 0,
        fleet_backlog: int = 10, fleet_repeats: int | None = None) -> dict[str, Any]:
    """Interleaved repeats of the four scenarios (Mosquitto / NATS × one / two workers): the drain, then (with
    ``fleet_devices``, at most :data:`FLEET_MAX_DEVICES`) the fleet; ``fleet_repeats`` defaults to ``repeats``."""
    if not Path(NATS).exists():
        return {"unavailable": "nats-server is not installed"}
    workdir.mkdir(parents=True, exist_ok=True)
    config = harness.device_config(workdir / "prefill", "mqtt://127.0.0.1:1", **SYNC)
    template = [workdir / f"backlog-{k}.db" for k in range(devices)]
    for path in template:
        prefill(path, config, ratings)
    rows: dict[str, list[dict[str, Any]]] = {"mosquitto1": [], "mosquitto2": [], "nats1": [], "nats2": []}
    for rep in range(repeats):
        order = list(rows) if rep % 2 == 0 else list(rows)[::-1]
        for name in order:
            work = workdir / f"{name}-{rep}"
            fn = _mosquitto if name.startswith("mosquitto") else _nats
            rows[name].append(fn(work, template, devices, int(name[-1]), max_s))
            shutil.rmtree(work, ignore_errors=True)
    out: dict[str, Any] = {"what": f"{devices} sync agents draining {ratings} ratings each at once, receipted",
                           "devices": devices, "ratings_per_device": ratings, "repeats": repeats}
    for name, rs in rows.items():
        out[name] = {"rps": median([r["rps"] for r in rs]), "s": median([r["s"] for r in rs]),
                     "timed_out": any(r["timed_out"] for r in rs),
                     "lost": max(max(0, devices * ratings - r["distinct"]) for r in rs),
                     "duplicated": max(r["stored"] - r["distinct"] for r in rs)}

    def ratio(a: str, b: str) -> float:
        return median(ratios([r["rps"] for r in rows[a]], [r["rps"] for r in rows[b]]))
    out["nats1_vs_mosquitto1"] = ratio("nats1", "mosquitto1")
    out["nats2_vs_mosquitto2"] = ratio("nats2", "mosquitto2")
    out["nats2_vs_nats1"] = ratio("nats2", "nats1")
    out["mosquitto2_vs_mosquitto1"] = ratio("mosquitto2", "mosquitto1")
    out["safe"] = all(out[k]["lost"] == 0 and out[k]["duplicated"] == 0 and not out[k]["timed_out"] for k in rows)
    out["repeats_detail"] = rows
    if fleet_devices:
        out["fleet"] = run_fleet(workdir / "fleet", devices=min(fleet_devices, FLEET_MAX_DEVICES),
                                 backlog=fleet_backlog, repeats=fleet_repeats or repeats)
        out["fleet"]["devices_asked"] = fleet_devices
        for k in ("nats1_vs_mosquitto1", "nats2_vs_mosquitto2", "nats2_vs_nats1"):
            out[f"fleet_{k}"] = out["fleet"][k]
        out["safe"] = out["safe"] and out["fleet"]["safe"]
    return out
