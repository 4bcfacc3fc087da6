"""Three NATS nodes, real sync agents spread over them, two central workers sharing one JetStream consumer: a node
SIGKILLed mid-drain and started again, a worker SIGKILLed mid-drain and started again — every rating is stored
exactly once, every device gets its receipts (over MQTT, through the cluster), and no alert is opened twice.

The cluster config is provisioning's (``write_nats_config``: accounts, per-device rights, bcrypt hashes); the
workers are ``smileloop central --nats …`` processes; the ratings stream is made by the first worker with three
replicas. Bounded: 6 devices × 200 ratings, each step waits on a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from central.nats_source import DURABLE, STREAM
from device.config import load_config
from device.recorder import Recorder
from device.store import DeviceStore
from provisioning.credentials import bcrypt_hash
from provisioning.inventory import Device
from sync_agent.agent import SyncAgent
from tests.conftest import wait_for
from tests.nats_cluster import NATS, NatsCluster
from tests.sync.helpers import running

pytestmark = [pytest.mark.broker, pytest.mark.skipif(not Path(NATS).exists(), reason="nats-server is not installed")]

DEVICES = 6
RATINGS = 200  # per device
MIX = (1, 2, 3, 3, 4, 4, 4, 4)  # one in four unhappy: alerts to keep unique
SYNC = {"batch_size": 10, "max_inflight": 4, "max_rate": 25.0, "ack_timeout": 3, "batch_delay": 0.05,
        "reconnect_min": 0.1, "reconnect_max": 1.0}
ACK_WAIT = 2.0  # a worker's unacknowledged messages go to the other after this


def kiosk(k: int) -> Device:
    return Device(device_id=f"kiosk-{k}", site="store-1", location=f"loc-{k}", state="active", scale="smiley4",
                  question={"en": "?"}, languages=("en",), hours={}, timezone="UTC", created_at="2026-12-03",
                  credentials_at=None, revoked_at=None, last_seen=None, last_state=None, cert_serial=None)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    passwords = {"central": "central-pw", **{f"kiosk-{k}": f"pw-{k}" for k in range(DEVICES)}}
    for user, pw in passwords.items():
        (tmp_path / f"{user}.pw").write_text(pw + "\n")
    hashes = {user: bcrypt_hash(pw, cost=4) for user, pw in passwords.items()}
    nodes = NatsCluster(tmp_path / "nats", accounts={"central": "central"},
                        devices=[kiosk(k) for k in range(DEVICES)], passwords=hashes)
    try:
        yield nodes.start()
    finally:
        nodes.close()


def rotated(urls: list[str], first: int) -> list[str]:
    return urls[first:] + urls[:first]


def jetstream(url: str, password: str) -> dict[str, int] | None:
    """The ratings stream's copies and its durable consumer's counters (asked as central over NATS), or None
    while the workers have not made them."""
    import nats

    async def ask() -> dict[str, int] | None:
        try:
            nc = await nats.connect(url, user="central", password=password, connect_timeout=1,
                                    allow_reconnect=False)
        except Exception:
            return None
        try:
            js = nc.jetstream(timeout=2)
            info = await js.consumer_info(STREAM, DURABLE)
            replicas = (await js.stream_info(STREAM)).config.num_replicas or 0
            return {"replicas": replicas, "redelivered": info.num_redelivered or 0,
                    "ack_pending": info.num_ack_pending or 0, "waiting": info.num_pending or 0}
        except Exception:
            return None
        finally:
            await nc.close()
    return asyncio.run(ask())


def central_rows(db: Path, query: str) -> list[Any]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(query).fetchall()
    except sqlite3.OperationalError:  # no tables yet
        return []
    finally:
        conn.close()


def stored(db: Path) -> int:
    rows = central_rows(db, "SELECT count(*) FROM ratings")
    return int(rows[0][0]) if rows else 0


def test_a_node_and_a_worker_die_mid_drain_and_every_rating_is_stored_once(
        tmp_path: Path, cluster: NatsCluster, spawn: Callable[..., subprocess.Popen[Any]]):
    db = tmp_path / "central.db"
    mqtt_urls = [cluster.mqtt_url(i) for i in range(3)]
    nats_urls = [cluster.nats_url(i) for i in range(3)]

    def worker(name: str, first: int) -> subprocess.Popen[Any]:
        import sys

        with (tmp_path / f"{name}.log").open("ab") as log:
            return spawn([sys.executable, "-m", "smileloop", "central", "--db", str(db), "--client-id", name,
                          "--username", "central", "--password-file", str(tmp_path / "central.pw"),
                          "--broker", ",".join(rotated(mqtt_urls, first)),
                          "--nats", ",".join(rotated(nats_urls, first)), "--nats-ack-wait", str(ACK_WAIT)],
                         stdout=log, stderr=subprocess.STDOUT)

    workers = {"worker-a": worker("worker-a", 0), "worker-b": worker("worker-b", 1)}
    wait_for(lambda: jetstream(nats_urls[2], "central-pw"), timeout=30, interval=0.2,
             message="the workers made the stream and its durable consumer")

    agents: list[SyncAgent] = []
    recorded: set[str] = set()
    for k in range(DEVICES):  # two devices first on each node; all three in every device's list
        path = tmp_path / f"kiosk-{k}" / "device.toml"
        path.parent.mkdir()
        path.write_text(tomli_w.dumps({
            "device": {"id": f"kiosk-{k}", "site": "store-1", "location": f"loc-{k}"},
            "broker": {"urls": rotated(mqtt_urls, k % 3), "username": f"kiosk-{k}",
                       "password_file": str(tmp_path / f"kiosk-{k}.pw")},
            "storage": {"path": "device.db"}, "survey": {"response_interval": 0.0}, "sync": SYNC}))
        cfg = load_config(path)
        recorder = Recorder(DeviceStore(cfg.storage.path), cfg)
        recorded |= {recorder.record(MIX[i % len(MIX)]).id for i in range(RATINGS)}
        agents.append(SyncAgent(cfg))
    total = DEVICES * RATINGS

    def at_least(n: int) -> Callable[[], bool]:
        return lambda: stored(db) >= n

    with contextlib.ExitStack() as stack:
        for a in agents:
            stack.callback(a.store.close)
            stack.enter_context(running(a))
        wait_for(at_least(total // 6), timeout=30, message="delivery under way")
        assert stored(db) < total, "the node must die mid-drain"
        cluster.kill(1)  # SIGKILL: its MQTT clients, its NATS clients, a third of the stream's copies
        wait_for(at_least(total * 3 // 8), timeout=40, message="delivery going on without node n2")
        cluster.start(1)
        wait_for(at_least(total // 2), timeout=30, message="delivery after n2 came back")
        assert stored(db) < total, "the worker must die mid-drain"
        workers["worker-a"].send_signal(signal.SIGKILL)  # holding fetched, unacknowledged messages
        workers["worker-a"].wait(10)
        wait_for(at_least(total * 5 // 8), timeout=30, message="worker-b carrying on alone")
        workers["worker-a"] = worker("worker-a", 0)
        try:
            wait_for(lambda: all(a.store.backlog().undelivered == 0 for a in agents), timeout=60, interval=0.1,
                     message="every device's ratings receipted")
        except AssertionError as e:
            raise AssertionError(f"{e}; stored {stored(db)}/{total}; devices: " + "; ".join(
                f"{a.config.device_id} undelivered {a.store.backlog().undelivered} on :{a.settings.port} "
                f"connected {a.status.connected} ({a.status.last_error})" for a in agents)) from None
    for name, proc in workers.items():
        assert proc.poll() is None, f"{name} died: " + (tmp_path / f"{name}.log").read_text()[-3000:]

    ids = [r[0] for r in central_rows(db, "SELECT id FROM ratings")]
    assert len(ids) == len(set(ids)) == total, "each rating stored exactly once"
    assert set(ids) == recorded
    assert central_rows(db, "SELECT device_id, seq FROM ratings GROUP BY 1, 2 HAVING count(*) > 1") == []
    per_rating = central_rows(db, "SELECT kind, rating_id, count(*) FROM alerts WHERE rating_id IS NOT NULL "
                                  "GROUP BY 1, 2 HAVING count(*) > 1")
    assert per_rating == [], "an alert opened twice for one rating"
    live = central_rows(db, "SELECT kind, group_key, count(*) FROM alerts WHERE state <> 'resolved' "
                            "AND group_key IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1")
    assert live == [], "two live alerts for one group"
    assert central_rows(db, "SELECT count(*) FROM alerts")[0][0] > 0, "unhappy ratings opened alerts"
    facts = jetstream(nats_urls[0], "central-pw")
    assert facts is not None and facts["replicas"] == 3, facts
    assert facts["waiting"] == 0, "nothing left in the stream"
