"""Fleet: thousands of simulated devices with offline backlogs reconnecting at once against one Mosquitto.

Each simulated device has its own identity (client id, topics, ``seq`` counter, UUID per rating) and
speaks the device side of docs/PROTOCOL.md: batches on ``…/ratings`` at QoS 1, a rating is done only
when central's receipt on ``…/ack`` names it, unreceipted ratings go again after ``ack_timeout``, a
retained ``online`` status and an ``offline`` last will. The outbox lives in memory (this is a load
generator, not a device); all clients are driven from one asyncio loop through paho's external-loop API
(socket callbacks + ``loop_read``/``loop_write``/``loop_misc``), not one thread per device.

Central runs as its own process (one worker, then two on an MQTT v5 shared subscription, storing into
the same PostgreSQL schema — or, with no PostgreSQL reachable, the same SQLite file). Counted from central's
table afterwards: ratings lost and stored twice. Baselines, in the same run: the same messages (same devices,
sites and batches) sent over one MQTT connection, so the ratio is what fan-in over thousands of connections
costs; and one worker against two (target: two ≥ 1.6× one).

The CPU seconds of every process in the loop (each worker, the broker, this simulator, all PostgreSQL
processes) and the machine's busy share of all its cores are recorded per scenario: with two cores shared by
all of them, they tell whether a second worker is held back by the machine or by the design.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import shutil
import socket
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench import harness
from bench.stats import median, quantiles, ratios, spread
from smileloop_core import topics
from smileloop_core.mqtt import Backoff

MIX = (1, 2, 3, 3, 4, 4, 4, 4, 4, 4)  # one visitor in five unhappy
TARGET_TWO_WORKERS = 1.6
PG_URL = os.environ.get("SMILELOOP_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
DEVICES_PER_SITE = 4


def identities(devices: int, prefix: str = "sim") -> list[tuple[str, str, str]]:
    """(device id, site, location) of each simulated device: a few devices per site, each at its own
    touchpoint, as a real estate of stores would be. A broker that checks rights (a NATS cluster's config) is
    written from the same list."""
    return [(f"{prefix}-{i:05d}", f"{prefix}-site-{i // DEVICES_PER_SITE:04d}", f"exit-{i % DEVICES_PER_SITE}")
            for i in range(devices)]


class SimDevice:
    """One device's protocol state; the fleet's event loop moves its bytes."""

    def __init__(self, fleet: Fleet, device_id: str, site: str, location: str, backlog: int,
                 rng: random.Random) -> None:
        self.fleet = fleet
        self.id = device_id
        self.site = site
        self.topic_ratings = topics.ratings(site, device_id)
        self.topic_ack = topics.ack(site, device_id)
        self.topic_status = topics.status(site, device_id)
        self.queued: list[dict[str, Any]] = [
            harness.wire_rating(seq, value=MIX[rng.randrange(len(MIX))], location=location)
            for seq in range(1, backlog + 1)]
        self.generated = {r["id"] for r in self.queued}
        self.by_id = {r["id"]: r for r in self.queued}
        self.inflight: dict[int, list[str]] = {}  # mid → ids, waiting for PUBACK
        self.awaiting: dict[str, float] = {}  # id → receipt deadline
        self.receipted: set[str] = set()
        self.resent = 0
        self.receipts = 0
        self.connected_at: float | None = None
        self.backoff = Backoff(0.2, 5.0, rng)
        self.host, self.port = fleet.host, fleet.port
        self.client = self._new_client()

    def _new_client(self) -> mqtt.Client:
        if self.fleet.protocol == mqtt.MQTTv5:
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{self.id}", protocol=mqtt.MQTTv5,
                            reconnect_on_failure=False)
        else:  # 3.1.1 (a NATS cluster's MQTT listener): a clean session instead of v5's clean start
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{self.id}", protocol=self.fleet.protocol,
                            clean_session=True, reconnect_on_failure=False)
        password = self.fleet.passwords.get(self.id)
        if password is not None:  # the username is the device id, as provisioning issues it
            c.username_pw_set(self.id, password)
        c.will_set(self.topic_status, json.dumps({"v": 1, "state": "offline", "device": self.id,
                                                  "site": self.site}), qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.on_disconnect = self._on_disconnect
        self.fleet.attach(c)
        return c

    @property
    def done(self) -> bool:
        return len(self.receipted) == len(self.generated)

    def connect(self) -> None:
        try:
            if self.fleet.protocol == mqtt.MQTTv5:
                self.client.connect(self.host, self.port, keepalive=60, clean_start=True)
            else:
                self.client.connect(self.host, self.port, keepalive=60)
        except OSError:
            self.fleet.connect_errors += 1
            self.fleet.later(self.backoff.next_delay(), self._reconnect)

    def _reconnect(self) -> None:
        self.fleet.reconnects += 1
        self.client = self._new_client()
        self.connect()

    # paho callbacks (on the fleet's loop thread)
    def _on_connect(self, client: mqtt.Client, u: object, flags: object, rc: Any, props: object) -> None:
        if rc.is_failure:
            self.fleet.connect_errors += 1
            return
        self.connected_at = time.perf_counter()
        self.backoff.reset()
        client.subscribe(self.topic_ack, qos=1)
        client.publish(self.topic_status, json.dumps({"v": 1, "state": "online", "device": self.id,
                                                      "site": self.site, "backlog": len(self.queued)}),
                       qos=1, retain=True)

    def _on_subscribe(self, client: mqtt.Client, u: object, mid: int, codes: list[Any], props: object) -> None:
        if any(c.is_failure for c in codes):
            # No receipt would ever come on this connection (a NATS node refuses a QoS 1 subscription when its
            # JetStream consumer cannot be made in time): drop it and connect again, as the sync agent does
            # (on_disconnect follows and schedules the reconnect).
            self.fleet.refused_subscriptions += 1
            client.disconnect()
            return
        self.pump()

    def _on_disconnect(self, client: mqtt.Client, u: object, flags: object, rc: Any, props: object) -> None:
        if self.fleet.stopping or client is not self.client:
            return
        # Unacknowledged batches go back to the outbox; the next connection sends them again.
        for ids in self.inflight.values():
            self.queued.extend(self.by_id[i] for i in ids)
        self.inflight.clear()
        self.fleet.later(self.backoff.next_delay(), self._reconnect)

    def _on_publish(self, client: mqtt.Client, u: object, mid: int, rc: Any, props: object) -> None:
        ids = self.inflight.pop(mid, None)
        if ids is None:
            return
        deadline = time.monotonic() + self.fleet.ack_timeout
        for i in ids:
            self.awaiting[i] = deadline
        self.pump()

    def _on_message(self, client: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        receipt = json.loads(msg.payload)
        self.receipts += 1
        for rid, _rev in receipt.get("stored", []):
            self.awaiting.pop(rid, None)
            self.receipted.add(rid)
        if self.done:
            self.fleet.device_done(self)

    def pump(self) -> None:
        while self.queued and len(self.inflight) < self.fleet.max_inflight:
            batch, self.queued = self.queued[:self.fleet.batch_size], self.queued[self.fleet.batch_size:]
            info = self.client.publish(self.topic_ratings, harness.ratings_message(self.id, batch, self.site), qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self.queued[:0] = batch
                return
            self.inflight[info.mid] = [r["id"] for r in batch]

    def expire(self, now: float) -> None:
        """No receipt in time: queue those ratings again (central stores each id once)."""
        late = [i for i, d in self.awaiting.items() if d <= now]
        for i in late:
            del self.awaiting[i]
            if i not in self.receipted:
                self.queued.append(self.by_id[i])
                self.resent += 1
        if late:
            self.pump()


class Fleet:
    """All simulated devices on one asyncio loop via paho's external-loop socket callbacks.

    ``broker_url`` may be a list: device ``i`` connects to ``urls[i % len(urls)]`` (the nodes of a cluster).
    ``protocol`` is paho's ``MQTTv5`` (default) or ``MQTTv311``; ``passwords`` maps device id → password, the
    username being the device id. ``broker_pids``: every broker process, for the memory they hold with the whole
    fleet connected (``broker_pid``: one).
    """

    def __init__(self, broker_url: str | Sequence[str], devices: int, backlog: int, *, batch_size: int = 100,
                 max_inflight: int = 20, ack_timeout: float = 60.0, seed: int = 7, prefix: str = "sim",
                 broker_pid: int | None = None, protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv5,
                 passwords: Mapping[str, str] | None = None, broker_pids: Sequence[int] = ()) -> None:
        self.broker_pid = broker_pid
        self.broker_pids = [broker_pid] if broker_pid else list(broker_pids)
        urls = [broker_url] if isinstance(broker_url, str) else list(broker_url)
        addresses = [harness._host_port(u) for u in urls]
        self.host, self.port = addresses[0]
        self.protocol = protocol
        self.passwords = dict(passwords or {})
        self.batch_size = batch_size
        self.max_inflight = max_inflight
        self.ack_timeout = ack_timeout
        self.loop = asyncio.new_event_loop()
        self.stopping = False
        self.connect_errors = 0
        self.reconnects = 0
        self.refused_subscriptions = 0
        self._remaining = devices
        self._all_done = asyncio.Event()
        rng = random.Random(seed)
        self.devices = [SimDevice(self, device_id, site, location, backlog, rng)
                        for device_id, site, location in identities(devices, prefix)]
        for i, d in enumerate(self.devices):
            d.host, d.port = addresses[i % len(addresses)]
        self.done_at: list[float] = []

    # paho's external-loop hooks
    def attach(self, c: mqtt.Client) -> None:
        c.on_socket_open = self._socket_open
        c.on_socket_close = self._socket_close
        c.on_socket_register_write = self._register_write
        c.on_socket_unregister_write = self._unregister_write

    def _socket_open(self, client: mqtt.Client, u: object, sock: Any) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 16)
        self.loop.add_reader(sock, client.loop_read)

    def _socket_close(self, client: mqtt.Client, u: object, sock: Any) -> None:
        self.loop.remove_reader(sock)
        self.loop.remove_writer(sock)

    def _register_write(self, client: mqtt.Client, u: object, sock: Any) -> None:
        self.loop.add_writer(sock, client.loop_write)

    def _unregister_write(self, client: mqtt.Client, u: object, sock: Any) -> None:
        self.loop.remove_writer(sock)

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        self.loop.call_later(delay, fn)

    def device_done(self, device: SimDevice) -> None:
        if device.done and not getattr(device, "_counted", False):
            device._counted = True  # type: ignore[attr-defined]
            self.done_at.append(time.perf_counter())
            self._remaining -= 1
            if self._remaining == 0:
                self._all_done.set()

    async def _misc(self) -> None:
        while not self.stopping:
            now = time.monotonic()
            for d in self.devices:
                d.client.loop_misc()
                d.expire(now)
            await asyncio.sleep(1.0)

    async def _run(self, timeout: float) -> dict[str, Any]:
        misc = asyncio.ensure_future(self._misc())
        t0 = time.perf_counter()
        for i, d in enumerate(self.devices):  # all at once, as after a site-wide outage
            d.connect()
            if i % 50 == 49:
                await asyncio.sleep(0)
        t_connects_sent = time.perf_counter()
        try:
            await asyncio.wait_for(self._all_done.wait(), timeout)
            timed_out = False
        except TimeoutError:
            timed_out = True
        t1 = time.perf_counter()
        broker_rss = (sum(harness.rss_mb(p) for p in self.broker_pids) if self.broker_pids
                      else float("nan"))  # all still connected
        self.stopping = True
        misc.cancel()
        for d in self.devices:
            d.client.disconnect()
        for _ in range(20):  # let the DISCONNECTs go out
            await asyncio.sleep(0.01)
        connected = sorted(d.connected_at - t0 for d in self.devices if d.connected_at)
        return {
            "drain_s": t1 - t0, "timed_out": timed_out, "connect_calls_s": t_connects_sent - t0,
            "all_connected_s": connected[-1] if len(connected) == len(self.devices) else None,
            "connected": len(connected), "connect_errors": self.connect_errors, "reconnects": self.reconnects,
            "refused_subscriptions": self.refused_subscriptions,
            "resent": sum(d.resent for d in self.devices),
            "done_curve_s": quantiles([t - t0 for t in self.done_at]), "broker_rss_mb": broker_rss,
        }

    def run(self, timeout: float) -> dict[str, Any]:
        try:
            return self.loop.run_until_complete(self._run(timeout))
        finally:
            self.loop.close()


def one_connection(fleet: Fleet, timeout: float) -> dict[str, Any]:
    """The baseline: the fleet's very messages (same devices, sites, topics, batches) from one MQTT connection,
    20 in flight, until central has receipted every rating; what fan-in over many connections costs is the
    difference."""
    import threading

    total = sum(len(d.generated) for d in fleet.devices)
    receipted: set[str] = set()
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        receipted.update(rid for rid, _ in json.loads(msg.payload).get("stored", []))
        if len(receipted) >= total:
            done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-one-connection", protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(fleet.max_inflight)
    c.max_queued_messages_set(0)
    c.on_message = on_message
    c.on_subscribe = lambda *_: subscribed.set()
    t0 = time.perf_counter()
    c.connect(fleet.host, fleet.port)
    c.loop_start()
    try:
        c.subscribe(topics.ack("+", "+"), qos=1)
        subscribed.wait(10)
        t_connected = time.perf_counter() - t0
        for d in fleet.devices:
            for i in range(0, len(d.queued), fleet.batch_size):
                c.publish(d.topic_ratings, harness.ratings_message(d.id, d.queued[i:i + fleet.batch_size], d.site),
                          qos=1)
        timed_out = not done.wait(timeout)
        t1 = time.perf_counter()
        broker_rss = harness.rss_mb(fleet.broker_pid) if fleet.broker_pid else float("nan")
    finally:
        c.disconnect()
        c.loop_stop()
    fleet.loop.close()
    return {"drain_s": t1 - t0, "timed_out": timed_out, "connect_calls_s": t_connected,
            "all_connected_s": t_connected, "connected": 1, "connect_errors": 0, "reconnects": 0, "resent": 0,
            "refused_subscriptions": 0,
            "done_curve_s": [], "broker_rss_mb": broker_rss}


def _check(rows: list[tuple[str, str, int]], fleet: Fleet) -> dict[str, int]:
    """Lost and doubly stored ratings of this fleet, from central's (id, device_id, seq) rows."""
    generated = set().union(*(d.generated for d in fleet.devices))
    stored = [r[0] for r in rows]
    twice = len(rows) - len({(r[1], r[2]) for r in rows})
    return {"generated": len(generated), "stored": len(stored), "lost": len(generated - set(stored)),
            "duplicated": (len(stored) - len(set(stored))) + twice}


def _stored_rows(db: Path | str, schema: str | None, prefix: str) -> list[tuple[str, str, int]]:
    sql = "SELECT id, device_id, seq FROM {t} WHERE device_id LIKE {p}"
    if schema is None:
        conn = sqlite3.connect(str(db), timeout=60)
        try:
            return [tuple(r) for r in conn.execute(sql.format(t="ratings", p="?"), (prefix + "-%",))]
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(str(db), autocommit=True) as pg:
        return [tuple(r) for r in pg.execute(sql.format(t=f"{schema}.ratings", p="%s"), (prefix + "-%",))]


def _drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as pg:
        pg.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def pg_available() -> str | None:
    """None if PostgreSQL answers at PG_URL, else why not."""
    try:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as pg:
            pg.execute("SELECT 1")
        return None
    except Exception as e:
        return f"{type(e).__name__}: {str(e).strip()[:200]}"


def _scenario(workdir: Path, *, devices: int, backlog: int, workers: int, timeout: float,
              prefix: str, one_conn: bool = False, postgres: bool = False,
              profile: bool = False) -> dict[str, Any]:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    schema = f"bench_fleet_{os.getpid()}_{prefix}" if postgres else None
    db: Path | str = PG_URL if postgres else workdir / "central.db"
    try:
        with harness.broker(workdir / "broker") as b:
            group = "bench" if workers > 1 else None
            centrals: list[harness.CentralProcess] = []
            try:
                for k in range(workers):  # one after the other: the first creates the schema
                    centrals.append(harness.CentralProcess(b.url, db, client_id=f"central-{k}", share_group=group,
                                                           schema=schema, log=workdir / f"central-{k}.log",
                                                           profile=workdir / f"central-{k}.prof" if profile else None))
                    harness.probe_central(b.url)
                fleet = Fleet(b.url, devices, backlog, prefix=prefix, broker_pid=b.proc.pid if b.proc else None)
                pids = {f"central{k}": c.pid for k, c in enumerate(centrals)}
                pids["broker"] = b.proc.pid if b.proc else 0
                pids["fleet"] = os.getpid()
                rss0 = harness.rss_mb(pids["broker"])
                meter = harness.CpuMeter(pids, {"postgres": "postgres"} if postgres else {}).start()
                result = one_connection(fleet, timeout) if one_conn else fleet.run(timeout)
                result["broker_kb_per_device"] = (result["broker_rss_mb"] - rss0) * 1024 / devices
                cpu = meter.stop()
            finally:
                for c in centrals:
                    c.stop()
        check = _check(_stored_rows(db, schema, prefix), fleet)
    finally:
        if schema:
            _drop_schema(schema)
    return figures(result, check, cpu, devices=devices, backlog=backlog, workers=workers,
                   store="postgresql" if postgres else "sqlite")


def figures(result: dict[str, Any], check: dict[str, int], cpu: dict[str, float], *, devices: int, backlog: int,
            workers: int, store: str) -> dict[str, Any]:
    """One scenario's figures from :meth:`Fleet.run`, :func:`_check` and a :class:`harness.CpuMeter` whose
    processes are named ``central<k>``, ``broker`` (all broker processes together) and ``fleet``."""
    check = dict(check)
    if result["timed_out"]:  # not delivered by the deadline is not "lost": say how many were pending
        check["pending_at_timeout"], check["lost"] = check["lost"], 0
    total = devices * backlog
    central_cpu = sum(v for k, v in cpu.items() if k.startswith("central") and k.endswith("_cpu_s"))
    per_k = {k.replace("_cpu_s", "_cpu_s_per_1k"): 1000 * v / total for k, v in cpu.items() if k.endswith("_cpu_s")}
    return {**result, **check, "devices": devices, "backlog": backlog, "workers": workers,
            "ratings_per_s": total / result["drain_s"], "central_cpu_s": central_cpu,
            "central_cpu_pct": 100 * central_cpu / cpu["wall_s"], "broker_cpu_pct": cpu["broker_cpu_pct"],
            "broker_cpu_s": cpu["broker_cpu_s"], "fleet_cpu_pct": cpu["fleet_cpu_pct"],
            "postgres_cpu_pct": cpu.get("postgres_cpu_pct", 0.0), "machine_busy_pct": cpu["machine_busy_pct"],
            "central_cpu_us_per_rating": 1e6 * central_cpu / total,
            "broker_cpu_us_per_rating": 1e6 * cpu["broker_cpu_s"] / total, "cpu_s_per_1k": per_k, "store": store}


def summarise(rs: list[dict[str, Any]]) -> dict[str, Any]:
    """One scenario over its repeats: medians of the rates and costs, the worst of lost, duplicated and resent,
    the last repeat's curve of devices done."""
    out: dict[str, Any] = {key: median([r[key] for r in rs]) for key in (
        "drain_s", "ratings_per_s", "central_cpu_pct", "broker_cpu_pct", "fleet_cpu_pct",
        "central_cpu_us_per_rating", "broker_cpu_us_per_rating", "broker_rss_mb",
        "broker_kb_per_device", "postgres_cpu_pct", "machine_busy_pct")}
    out["cpu_s_per_1k"] = {p: median([r["cpu_s_per_1k"][p] for r in rs]) for p in rs[0]["cpu_s_per_1k"]}
    out["all_connected_s"] = median([r["all_connected_s"] or float("nan") for r in rs])
    out["lost"] = max(r["lost"] for r in rs)
    out["duplicated"] = max(r["duplicated"] for r in rs)
    out["resent"] = max(r["resent"] for r in rs)
    for key in ("connect_errors", "reconnects", "refused_subscriptions"):
        out[key] = max(r.get(key, 0) for r in rs)
    out["pending_at_timeout"] = max(r.get("pending_at_timeout", 0) for r in rs)
    out["timed_out"] = any(r["timed_out"] for r in rs)
    out["done_curve_s"] = rs[-1].get("done_curve_s", [])
    return out


def run(workdir: Path, *, devices: int, backlog: int, repeats: int, timeout: float = 180.0,
        store: str = "postgresql") -> dict[str, Any]:
    """Interleaved repeats of: one connection, the fleet into one worker, the fleet into two. ``store``
    "postgresql" (falls back to SQLite, said in ``store_note``, when the server does not answer) or "sqlite"."""
    why_not = pg_available() if store == "postgresql" else "SQLite asked for"
    postgres = why_not is None
    limit = harness.raise_nofile(max(4096, devices * 3 + 256))
    if limit < devices * 2 + 64:
        raise harness.BenchError(f"open-file limit {limit} is too low for {devices} devices; raise ulimit -n")
    total = devices * backlog
    rows: dict[str, list[dict[str, Any]]] = {"single": [], "fleet1": [], "fleet2": []}
    for rep in range(repeats):  # interleaved: baseline, one worker, two workers; again
        rows["single"].append(_scenario(workdir / f"single{rep}", devices=devices, backlog=backlog, workers=1,
                                        timeout=timeout, prefix=f"one{rep}", one_conn=True, postgres=postgres))
        rows["fleet1"].append(_scenario(workdir / f"fleet1-{rep}", devices=devices, backlog=backlog, workers=1,
                                        timeout=timeout, prefix=f"sim{rep}", postgres=postgres))
        rows["fleet2"].append(_scenario(workdir / f"fleet2-{rep}", devices=devices, backlog=backlog, workers=2,
                                        timeout=timeout, prefix=f"duo{rep}", postgres=postgres))
    for rep in range(repeats):
        for k in rows:
            rows[k][rep].pop("done_curve_s") if rep < repeats - 1 else None
    out: dict[str, Any] = {"what": "fleet reconnecting at once with offline backlogs", "devices": devices,
                           "backlog_per_device": backlog, "ratings": total, "repeats": repeats,
                           "nofile_limit": limit, "store": "postgresql" if postgres else "sqlite",
                           "store_note": why_not,
                           "fleet_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    for k, rs in rows.items():
        out[k] = summarise(rs)
    out["fleet1_vs_single"] = median(ratios([r["ratings_per_s"] for r in rows["fleet1"]],
                                            [r["ratings_per_s"] for r in rows["single"]]))
    out["fleet2_vs_fleet1"] = median(ratios([r["ratings_per_s"] for r in rows["fleet2"]],
                                            [r["ratings_per_s"] for r in rows["fleet1"]]))
    two = ratios([r["ratings_per_s"] for r in rows["fleet2"]], [r["ratings_per_s"] for r in rows["fleet1"]])
    out["fleet2_vs_fleet1_spread"] = spread(two)
    out["target"] = f"0 lost and 0 duplicated; two workers ≥ {TARGET_TWO_WORKERS}× one"
    out["safe"] = all(out[k]["lost"] == 0 and out[k]["duplicated"] == 0 and not out[k]["timed_out"] for k in rows)
    out["met"] = out["safe"] and out["fleet2_vs_fleet1"] >= TARGET_TWO_WORKERS
    out["repeats_detail"] = rows
    return out


def profile(workdir: Path, *, devices: int, backlog: int, timeout: float = 120.0) -> dict[str, str]:
    """The two-worker scenario again with each worker under cProfile (written when it stops): where a worker's
    wall time goes — its own work, waiting on PostgreSQL (psycopg ``wait``), waiting on the broker (``select``)."""
    from bench.profiles import top

    postgres = pg_available() is None
    work = workdir / "profile-fleet2"
    _scenario(work, devices=devices, backlog=backlog, workers=2, timeout=timeout, prefix="prof",
              postgres=postgres, profile=True)
    out = {}
    for k in range(2):
        prof = work / f"central-{k}.prof"
        out[f"worker_{k}"] = top(prof, 16) if prof.exists() else "(no profile written)"
    return out
