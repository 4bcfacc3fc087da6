"""Push N taps through real processes while injecting faults, then account for every tap.

Processes: Mosquitto (persistence on, as in production), ``smileloop central``, ``smileloop sync`` talking
to the broker through a :class:`~bench.chaos.proxy.CuttingProxy`, and the recording process
(:mod:`bench.chaos.tapper`). Faults, spread at random over the tapping time, a fixed number of each kind:

``broker``   Mosquitto SIGKILLed and restarted on the same port (what it held in memory is gone)
``network``  every agent↔broker TCP connection reset through the proxy
``agent``    the sync agent SIGKILLed (often mid-batch) and restarted
``central``  central SIGKILLed and restarted (its persistent session brings back what it had not acked)
``recorder`` the recording process SIGKILLed while it writes, ``PRAGMA integrity_check`` on the device
             file, and restarted for the taps still to make
``clock``    the recording process's wall clock jumped backwards an hour (SIGUSR1)

Accounting: a tap is *made* when the recording process printed its id (it returned from ``record``, the
visitor saw "thank you"). *Lost* = made but not at central; *duplicated* = stored at central more than once
(by id, or by device sequence number). A tap committed in the instant before a SIGKILL, never confirmed,
is counted apart (``unconfirmed``): it must reach central too, since the device has it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import tomli_w

from bench.chaos.proxy import CuttingProxy
from smileloop_core.mosquitto import Mosquitto

FAULT_KINDS = ("broker", "network", "agent", "central", "recorder", "clock")
# Central's rules that re-read a window of ratings per message. Thousands of taps in minutes at one kiosk is no
# real traffic: with these on, the harness would measure them (central's benchmarks do), not delivery.
WINDOW_RULES = ("negative_share", "negative_count", "low_index", "recurring_reason", "burst", "same_value")


@dataclass
class ChaosPlan:
    workdir: Path
    taps: int = 300
    rate: float = 30.0  # taps per second
    faults: int = 3  # of each kind
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 1
    drain_timeout: float = 120.0
    down_time: tuple[float, float] = (0.1, 1.0)  # seconds a killed process stays down (uniform)
    window_rules: bool = False  # central's window and misuse rules (off: see WINDOW_RULES)
    outage: float = 0.0  # seconds of taps at the end made with the broker down (then the drain is timed)


@dataclass
class ChaosReport:
    taps_made: int = 0
    unconfirmed: int = 0  # committed on the device, the recording process killed before it said so
    device_rows: int = 0
    rows_at_central: int = 0
    lost: int = 0
    duplicated: int = 0
    phantom: int = 0  # at central but never on the device
    undelivered_on_device: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    recorder_crashes: int = 0  # the recording process exiting when no fault killed it
    integrity_checks: int = 0
    integrity_failures: list[str] = field(default_factory=list)
    clock_jumps_seconds: float = 0.0
    tapping_seconds: float = 0.0
    drain_seconds: float | None = None  # last tap and last fault → everything receipted at central
    worst_delay_seconds: float | None = None  # the longest tap → stored at central (central's repaired ts)
    outage_backlog: int | None = None  # ratings waiting on the device when the final outage ended
    total_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.duplicated == 0 and self.phantom == 0 and self.undelivered_on_device == 0
                and not self.integrity_failures and self.drain_seconds is not None and self.recorder_crashes == 0)

    def lines(self) -> list[str]:
        faults = ", ".join(f"{k} {v}" for k, v in self.faults.items())
        drain = f"{self.drain_seconds:.1f} s" if self.drain_seconds is not None else "DID NOT DRAIN"
        if self.outage_backlog is not None:
            drain += f" for a backlog of {self.outage_backlog} after the final outage"
        return [
            f"taps made          {self.taps_made} (+{self.unconfirmed} committed but unconfirmed at a SIGKILL)",
            f"rows at central    {self.rows_at_central} (device holds {self.device_rows})",
            f"lost               {self.lost}",
            f"duplicated         {self.duplicated}",
            f"phantom            {self.phantom}",
            f"undelivered        {self.undelivered_on_device} (still queued on the device at the end)",
            f"faults             {faults}",
            f"integrity_check    {self.integrity_checks} run, {len(self.integrity_failures)} failed; "
            f"recorder crashes {self.recorder_crashes}",
            f"clock jumped       {self.clock_jumps_seconds:+.0f} s in total",
            f"time to drain      {drain} (tapping {self.tapping_seconds:.1f} s, total {self.total_seconds:.1f} s)",
            f"worst tap→central  {self.worst_delay_seconds if self.worst_delay_seconds is not None else '?'} s "
            "(by central's repaired ts)",
            f"verdict            {'OK: nothing lost, nothing twice' if self.ok else 'FAILED'}",
        ]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


class _Proc:
    """A restartable child process with its output in a log file (stdout optionally read line by line)."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name, self.argv, self.log, self.env = name, argv, log, env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, stdout: int | IO[bytes] | None = None, argv: list[str] | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            argv or self.argv, stdout=stdout if stdout is not None else log, stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env, **(env or {})}, start_new_session=True)
        log.close()
        return self.proc

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class _Recorder:
    """The recording process, restarted for the taps still to make; collects the ids it confirms."""

    def __init__(self, config: Path, plan: ChaosPlan, log: Path) -> None:
        self.config, self.plan = config, plan
        self.proc = _Proc("recorder", [], log)
        self.ledger: set[str] = set()
        self.offset = 0.0
        self.starts = 0
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._base = 0
        self.crashes = 0

    def start(self) -> None:
        remaining = self.plan.taps - len(self.ledger)
        argv = [sys.executable, "-m", "bench.chaos.tapper", "--config", str(self.config), "--taps", str(remaining),
                "--rate", str(self.plan.rate), "--seed", str(self.plan.seed * 1000 + self.starts)]
        self.starts += 1
        self._base = self.count()
        proc = self.proc.start(stdout=subprocess.PIPE, argv=argv, env={"SMILELOOP_CLOCK_OFFSET": str(self.offset)})
        self._reader = threading.Thread(target=self._read, args=(proc,), daemon=True, name="ledger")
        self._reader.start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            text = line.decode(errors="replace").strip()
            if len(text) == 36:  # a whole UUID; a line cut by SIGKILL is not a confirmation
                with self._lock:
                    self.ledger.add(text)

    def count(self) -> int:
        with self._lock:
            return len(self.ledger)

    def revive(self) -> None:
        """Restart the process if it died on its own (counted: a crash is a finding) with taps still to make."""
        if self.proc.proc is not None and not self.alive() and self.count() < self.plan.taps:
            self.crashes += 1
            self.start()

    def alive(self) -> bool:
        return self.proc.proc is not None and self.proc.proc.poll() is None

    def jump(self) -> float:
        """SIGUSR1 once the process has confirmed a tap (before that it may not have its handler yet)."""
        jump = float(os.environ.get("SMILELOOP_CLOCK_JUMP", "-3600"))
        deadline = time.monotonic() + 15
        while self.alive() and self.count() <= self._base and time.monotonic() < deadline:
            time.sleep(0.01)
        proc = self.proc.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGUSR1)
            self.offset += jump
            return jump
        return 0.0

    def finished(self) -> bool:
        p = self.proc.proc
        return p is not None and p.poll() is not None and self.count() >= self.plan.taps

    def wait_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(10)


def run_chaos(plan: ChaosPlan, *, progress: bool = False) -> ChaosReport:
    """Run the whole scenario and return the accounting; never leaves a process behind."""
    unknown = [k for k in plan.kinds if k not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"unknown fault kind {unknown[0]!r}; known: {', '.join(FAULT_KINDS)}")
    work = plan.workdir
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(plan.seed)
    report = ChaosReport(faults={k: 0 for k in plan.kinds})
    started = time.monotonic()
    broker = Mosquitto(work / "broker", persistence=True)
    broker.start()
    proxy = CuttingProxy(broker.port).start()
    device_dir = work / "device"
    device_dir.mkdir(exist_ok=True)
    config = device_dir / "device.toml"
    config.write_text(tomli_w.dumps({
        "device": {"id": "chaos-1", "site": "chaos", "location": "exit"},
        "broker": {"url": f"mqtt://127.0.0.1:{proxy.port}"},
        "storage": {"path": "device.db"},
        "survey": {"response_interval": 0.0},
        "sync": {"ack_timeout": 3.0, "batch_delay": 0.2, "reconnect_min": 0.1, "reconnect_max": 1.0,
                 "heartbeat": 5.0},
    }))
    central_db = work / "central.db"
    smileloop = [sys.executable, "-m", "smileloop"]
    rules = []
    if not plan.window_rules:
        (work / "rules.toml").write_text(tomli_w.dumps({"default": {r: {"enabled": False} for r in WINDOW_RULES}}))
        rules = ["--rules", str(work / "rules.toml")]
    central = _Proc("central", [*smileloop, "central", "--broker", broker.url, "--db", str(central_db),
                                "--client-id", "chaos-central", *rules], work / "central.log")
    agent = _Proc("agent", [*smileloop, "sync", "--config", str(config)], work / "agent.log")
    recorder = _Recorder(config, plan, work / "recorder.log")
    say = (lambda msg: print(f"[{time.monotonic() - started:7.1f}s] {msg}", file=sys.stderr, flush=True)) \
        if progress else (lambda msg: None)
    try:
        central.start()
        _wait_file(central_db, 15)
        agent.start()
        recorder.start()
        _wait_file(device_dir / "device.db", 15)
        tapping = plan.taps / plan.rate
        schedule = sorted((rng.uniform(0.05, 0.95) * tapping, kind) for kind in plan.kinds for _ in range(plan.faults))
        t0 = time.monotonic()
        for at, kind in schedule:
            _sleep_until(t0 + at, recorder)
            _inject(kind, rng, plan, broker, proxy, central, agent, recorder, device_dir / "device.db", report)
            report.faults[kind] += 1
            say(f"fault {kind:<8} taps so far {recorder.count()}")
        deadline = time.monotonic() + plan.taps / plan.rate * 3 + 60
        outage_from = plan.taps - int(plan.outage * plan.rate)
        while plan.outage and recorder.count() < outage_from and time.monotonic() < deadline:
            recorder.revive()
            time.sleep(0.05)
        if plan.outage:
            broker.kill()  # closing time: the broker is gone for the last taps, a backlog builds up
            say(f"outage: broker down for the last {plan.taps - recorder.count()} taps")
        while not recorder.finished() and time.monotonic() < deadline:
            recorder.revive()
            time.sleep(0.05)
        if plan.outage:
            backlog = len(_ids(device_dir / "device.db", "SELECT id FROM ratings WHERE state IN (0, 1)"))
            report.outage_backlog = backlog
            broker.start()
            say(f"outage over with {backlog} ratings waiting")
        recorder.wait_reader()
        report.tapping_seconds = time.monotonic() - t0
        quiet = time.monotonic()
        say(f"taps done ({recorder.count()}); draining")
        report.drain_seconds = _drain(central_db, device_dir / "device.db", recorder.ledger, plan.drain_timeout, quiet)
        say(f"drained in {report.drain_seconds}")
    finally:
        for p in (recorder.proc, agent, central):
            p.stop()
        proxy.close()
        broker.stop()
    _account(report, recorder.ledger, device_dir / "device.db", central_db)
    report.recorder_crashes = recorder.crashes
    report.total_seconds = time.monotonic() - started
    (work / "report.json").write_text(json.dumps(report.as_dict(), indent=2))
    return report


def _inject(kind: str, rng: random.Random, plan: ChaosPlan, broker: Mosquitto, proxy: CuttingProxy,
            central: _Proc, agent: _Proc, recorder: _Recorder, device_db: Path, report: ChaosReport) -> None:
    down = rng.uniform(*plan.down_time)
    if kind == "broker":
        broker.kill()
        time.sleep(down)
        broker.start()
    elif kind == "network":
        proxy.cut()
    elif kind == "agent":
        agent.kill()
        time.sleep(down)
        agent.start()
    elif kind == "central":
        central.kill()
        time.sleep(down)
        central.start()
    elif kind == "recorder":
        recorder.proc.kill()
        recorder.wait_reader()
        report.integrity_checks += 1
        result = _integrity(device_db)
        if result != "ok":
            report.integrity_failures.append(result)
        if recorder.count() < plan.taps:
            recorder.start()
    elif kind == "clock":
        report.clock_jumps_seconds += recorder.jump()
    else:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")


def _integrity(path: Path) -> str:
    if not path.exists():
        return "ok"  # killed before its first write: nothing to check
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def _sleep_until(when: float, recorder: _Recorder) -> None:
    while time.monotonic() < when:
        recorder.revive()
        time.sleep(min(0.05, max(0.0, when - time.monotonic())))


def _wait_file(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _ids(db: Path, sql: str) -> list[Any]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return [r[0] for r in conn.execute(sql)]
    except sqlite3.OperationalError:  # the table is not there yet
        return []
    finally:
        conn.close()


def _drain(central_db: Path, device_db: Path, ledger: set[str], timeout: float, since: float) -> float | None:
    """Seconds until central holds every made tap and the device has nothing left to deliver."""
    deadline = since + timeout
    while time.monotonic() < deadline:
        central = set(_ids(central_db, "SELECT id FROM ratings"))
        if ledger <= central and not _ids(device_db, "SELECT id FROM ratings WHERE state IN (0, 1)"):
            return round(time.monotonic() - since, 2)
        time.sleep(0.2)
    return None


def _account(report: ChaosReport, ledger: set[str], device_db: Path, central_db: Path) -> None:
    central_ids = _ids(central_db, "SELECT id FROM ratings")
    device_ids = set(_ids(device_db, "SELECT id FROM ratings"))
    seq_dupes = _ids(central_db, "SELECT count(*) - count(DISTINCT device_id || '/' || seq) FROM ratings")
    central_set = set(central_ids)
    report.taps_made = len(ledger)
    report.device_rows = len(device_ids)
    report.unconfirmed = len(device_ids - ledger)
    report.rows_at_central = len(central_ids)
    pending = set(_ids(device_db, "SELECT id FROM ratings WHERE state IN (0, 1)"))
    # not at central but still queued on the device is late (a run that did not drain), not lost
    report.lost = len(ledger - central_set - pending) + len(ledger - device_ids)
    report.duplicated = (len(central_ids) - len(central_set)) + int(seq_dupes[0] if seq_dupes else 0)
    report.phantom = len(central_set - device_ids)
    report.undelivered_on_device = len(pending)
    worst = _ids(central_db, "SELECT max(julianday(received_at) - julianday(ts)) * 86400 FROM ratings")
    report.worst_delay_seconds = round(float(worst[0]), 2) if worst and worst[0] is not None else None
