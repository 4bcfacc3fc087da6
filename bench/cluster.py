"""Cluster: the same drain through a 3-node NATS cluster and through one Mosquitto, in one run, with one and two
central workers — so the figures are ratios between neighbours measured minutes apart on the same machine.

Subject: ``devices`` real sync agents (threads of this process), each draining a copy of the same pre-filled
backlog, all at once, into central (its own processes, one SQLite store), until every rating is receipted.
On Mosquitto the workers share an MQTT v5 shared subscription; on NATS they share one JetStream durable pull
consumer (``smileloop central --nats``), the devices speak MQTT 3.1.1 to the nodes (spread over the three) with
passwords checked by bcrypt, and the ratings stream keeps 3 copies. Loopback only; every process stopped.

The 3 nodes, the workers, the devices and the bench share the machine's cores: on a 2-core machine the cluster
figure is what three servers cost on one host, not what three hosts would give (docs/SCALE.md).
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import harness
from bench.drain import prefill
from bench.stats import median, ratios
from central.nats_source import DURABLE, STREAM
from device.config import parse_config
from device.store import DeviceStore
from provisioning.credentials import bcrypt_hash
from provisioning.inventory import Device
from provisioning.nats import NatsNode, write_nats_config
from smileloop_core.mosquitto import reserve_port
from sync_agent.agent import SyncAgent
from sync_agent.errors import SyncError

NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"
SYNC: dict[str, Any] = {"batch_size": 100, "max_inflight": 20, "max_rate": 1e9, "ack_timeout": 30.0, "batch_delay": 0.0,
        "reconnect_min": 0.1, "reconnect_max": 1.0}
SITE = harness.BENCH_SITE


def _device(k: int) -> Device:
    return Device(device_id=f"kiosk-{k}", site=SITE, location="exit", state="active", scale="smiley4",
                  question={"en": "?"}, languages=("en",), hours={}, timezone="UTC", created_at="2026-12-03",
                  credentials_at=None, revoked_at=None, last_seen=None, last_state=None, cert_serial=None)


@contextmanager
def nats_cluster(work: Path, devices: int) -> Iterator[tuple[list[str], list[str], list[int]]]:
    """Three nodes from provisioning's writer; (MQTT URLs, NATS URLs, pids), all stopped on exit."""
    reservations = [reserve_port() for _ in range(9)]
    ports = [r.port for r in reservations]
    nodes = [NatsNode(f"n{i + 1}", ports[3 * i], ports[3 * i + 1], ports[3 * i + 2]) for i in range(3)]
    hashes = {"central": bcrypt_hash("central-pw", cost=4),
              **{f"kiosk-{k}": bcrypt_hash(f"pw-{k}", cost=4) for k in range(devices)}}
    confs, _ = write_nats_config(work / "nats", nodes, accounts={"central": "central"},
                                 devices=[_device(k) for k in range(devices)], passwords=hashes)
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

    async def ask() -> bool:
        try:
            nc = await nats.connect(url, user="central", password="central-pw", connect_timeout=1,
                                    allow_reconnect=False)
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


def _nats(work: Path, template: list[Path], devices: int, workers: int, max_s: float) -> dict[str, Any]:
    db = work / "central.db"
    (work / "central.pw").parent.mkdir(parents=True, exist_ok=True)
    (work / "central.pw").write_text("central-pw\n")
    with nats_cluster(work, devices) as (mqtt_urls, nats_urls, _pids):
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

            def creds(k: int, d: Path) -> dict[str, Any]:
                (d / "pw").write_text(f"pw-{k}\n")
                return {"username": f"kiosk-{k}", "password_file": str(d / "pw")}
            out = _drain(work / "devices", template, lambda k: mqtt_urls[k % 3:] + mqtt_urls[:k % 3], creds,
                         devices, max_s)
        finally:
            for c in centrals:
                c.stop()
    out["stored"], out["distinct"] = _stored(db)
    return out


def run(workdir: Path, *, devices: int, ratings: int, repeats: int, max_s: float = 120.0) -> dict[str, Any]:
    """Interleaved repeats of the four scenarios (Mosquitto / NATS × one / two workers)."""
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
    return out
