"""What every benchmark sets up: a private broker, central as its own process, device configs, /proc readings.

Central runs as a separate process (``python -m smileloop central``), as in production, so its CPU and
memory are its own and it does not share the benchmark's interpreter lock. Loopback only, ever.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from device.config import DeviceConfig, parse_config
from smileloop_core import topics
from smileloop_core.mosquitto import Mosquitto

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
BENCH_SITE = "bench"
ROOT = Path(__file__).resolve().parent.parent


class BenchError(RuntimeError):
    """A benchmark could not run (a process did not start, central never answered)."""


def raise_nofile(wanted: int = 65536) -> int:
    """Raise this process's open-file limit towards ``wanted`` (children inherit it); returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft


def broker(workdir: Path, max_connections: int = -1) -> Mosquitto:
    """A private Mosquitto sized for a fleet: no connection cap, deep queues, big inflight windows."""
    return Mosquitto(workdir, extra_config=f"max_connections {max_connections}\nset_tcp_nodelay true\n")


def device_config(workdir: Path, broker_url: str, device_id: str = "kiosk-1", **sync: Any) -> DeviceConfig:
    """A device config as provisioning would write it, with ``sync`` overrides (e.g. max_rate)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return parse_config({
        "device": {"id": device_id, "site": BENCH_SITE, "location": "exit"},
        "broker": {"url": broker_url},
        "storage": {"path": "device.db"},
        "survey": {"response_interval": 0.0},
        "sync": sync,
    }, base=workdir)


# --- /proc --------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0.0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (0.0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def pids_named(comm: str) -> list[int]:
    """Processes whose command name is ``comm`` (e.g. every PostgreSQL backend), from /proc."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == comm:
                    out.append(int(d.name))
            except OSError:
                continue
    return out


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields) - idle) / CLK_TCK, sum(fields) / CLK_TCK


class CpuMeter:
    """CPU seconds used by some processes between ``start()`` and ``stop()``."""

    def __init__(self, pids: dict[str, int], groups: dict[str, str] | None = None) -> None:
        self.pids = pids
        self.groups = groups or {}  # name → command name: all such processes together (e.g. "postgres")
        self._t0 = 0.0
        self._c0: dict[str, float] = {}
        self._g0: dict[str, dict[int, float]] = {}
        self._m0 = (0.0, 0.0)
        self.result: dict[str, float] = {}

    def start(self) -> CpuMeter:
        self._t0 = time.monotonic()
        self._c0 = {k: cpu_seconds(p) for k, p in self.pids.items()}
        self._g0 = {k: {p: cpu_seconds(p) for p in pids_named(comm)} for k, comm in self.groups.items()}
        self._m0 = machine_busy()
        return self

    def stop(self) -> dict[str, float]:
        """CPU seconds and % of one core per process (a group: processes that started meanwhile count whole,
        ones that ended meanwhile are missed), and the machine's busy share of all its cores."""
        wall = time.monotonic() - self._t0
        busy, total = machine_busy()
        self.result = {"wall_s": wall, "machine_busy_pct": 100 * (busy - self._m0[0]) / max(total - self._m0[1], 1e-9)}
        used_by = {k: cpu_seconds(p) - self._c0[k] for k, p in self.pids.items()}
        for k, comm in self.groups.items():
            used_by[k] = sum(cpu_seconds(p) - self._g0[k].get(p, 0.0) for p in pids_named(comm))
        for k, used in used_by.items():
            self.result[f"{k}_cpu_s"] = used
            self.result[f"{k}_cpu_pct"] = 100 * used / wall if wall else 0.0
        return self.result


# --- central (or the bare subscriber) as its own process ------------------------------------------
class ServiceProcess:
    """A subscriber in its own process, its output in ``log``; ``stop()`` sends SIGTERM, then SIGKILL."""

    def __init__(self, cmd: list[str], log: Path) -> None:
        self.log = log
        # The repository on the path, so ``-m bench.…`` starts from any working directory.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class CentralProcess(ServiceProcess):
    """``python -m smileloop central`` on a private broker, storing into a SQLite file or (``db`` a
    ``postgresql://`` URL) PostgreSQL under ``schema``; :func:`probe_central` proves it stores and receipts."""

    def __init__(self, broker_url: str, db: Path | str, *, client_id: str | None = None,
                 share_group: str | None = None, notify: Sequence[str] = (), log: Path | None = None,
                 profile: Path | None = None, schema: str | None = None) -> None:
        self.broker_url = broker_url
        self.db = db
        self.client_id = client_id or f"central-{uuid.uuid4().hex[:8]}"
        prof = ["-m", "cProfile", "-o", str(profile)] if profile else []  # written when central exits on SIGTERM
        cmd = [sys.executable, *prof, "-m", "smileloop", "central", "--broker", broker_url, "--db", str(db),
               "--client-id", self.client_id]
        if schema:
            cmd += ["--schema", schema]
        if share_group:
            cmd += ["--share-group", share_group]
        for url in notify:
            cmd += ["--notify", url]
        if log is None:
            if isinstance(db, Path):
                log = db.with_suffix(f".{self.client_id}.log")
            else:
                raise BenchError("a central storing into PostgreSQL needs a log path")
        super().__init__(cmd, log)


class BareProcess(ServiceProcess):
    """:mod:`bench.bare_subscriber` in its own process: store and receipt, nothing else (the drain's baseline)."""

    def __init__(self, broker_url: str, db: Path) -> None:
        super().__init__([sys.executable, "-m", "bench.bare_subscriber", "--broker", broker_url, "--db", str(db)],
                         db.with_suffix(".log"))


def probe_central(broker_url: str, timeout: float = 20.0, device: str | None = None) -> float:
    """Send one rating as a fresh device and wait for central's receipt: proof central is subscribed.

    Returns the seconds it took. The probe rating is stored under device ``probe-…``, site ``bench``.
    """
    device = device or f"probe-{uuid.uuid4().hex[:8]}"
    host, port = _host_port(broker_url)
    got = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: got.set()
    client.connect(host, port)
    client.loop_start()
    try:
        sub = client.subscribe(topics.ack(BENCH_SITE, device), qos=1)
        if sub[0] != mqtt.MQTT_ERR_SUCCESS:
            raise BenchError(f"probe could not subscribe: {mqtt.error_string(sub[0])}")
        payload = ratings_message(device, [wire_rating(1, value=3)])
        t0 = time.monotonic()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            client.publish(topics.ratings(BENCH_SITE, device), payload, qos=1)
            if got.wait(1.0):
                return time.monotonic() - t0
        raise BenchError(f"central did not receipt a probe rating within {timeout:g}s")
    finally:
        client.disconnect()
        client.loop_stop()


def _host_port(url: str) -> tuple[str, int]:
    rest = url.split("://", 1)[1].split("?", 1)[0]
    host, port = rest.rsplit(":", 1)
    return host, int(port)


# --- ratings on the wire, for simulated devices and raw baselines --------------------------------
_TS = datetime(2026, 11, 24, 9, 0, tzinfo=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    """The wall clock now, as ratings carry it: stamps central takes as live traffic, not a late backlog."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wire_rating(seq: int, value: int = 4, location: str = "exit", ts: str = _TS) -> dict[str, Any]:
    """One rating in the wire form of docs/PROTOCOL.md, with a fresh UUID; ``ts`` defaults to a fixed old
    time (central files ratings that arrive more than 15 minutes late in a backlog summary)."""
    return {"id": str(uuid.uuid4()), "seq": seq, "ts": ts, "scale": "smiley4", "value": value,
            "location": location, "reason": None, "boot": "bench-boot", "mono": 1000.0 + seq / 1000}


def ratings_message(device: str, ratings: list[dict[str, Any]], site: str = BENCH_SITE) -> bytes:
    return json.dumps({"v": 1, "device": device, "site": site, "ratings": ratings}, separators=(",", ":")).encode()
