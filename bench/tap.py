"""Tap to durable: ``Recorder.record`` per tap vs a raw sqlite3 insert + commit into the same kind of file.

Both write to a WAL file with ``synchronous=FULL`` (an fsync per tap), in their own folder, interleaved
round by round so the machine's noise hits both alike. Target: Recorder p50 within 1.5× the raw p50.
"""

from __future__ import annotations

import random
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from bench import harness
from bench.stats import median, quantiles, ratios, summary
from device.recorder import Recorder
from device.store import DeviceStore

TARGET_P50_RATIO = 1.5


class RawInsert:
    """The floor: one INSERT of a rating-sized row and a COMMIT, WAL + synchronous=FULL, nothing else."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS ratings (id TEXT PRIMARY KEY, seq INTEGER, ts TEXT, "
                          "scale TEXT, value INTEGER, location TEXT, sentiment TEXT, boot_id TEXT, mono REAL)")
        self.seq = 0

    def tap(self, value: int) -> None:
        self.seq += 1
        self.conn.execute("BEGIN")
        self.conn.execute("INSERT INTO ratings VALUES (?,?,?,?,?,?,?,?,?)",
                          (str(uuid.uuid4()), self.seq, "2026-11-24T09:00:00.000Z", "smiley4", value, "exit",
                           "positive", "boot", time.monotonic()))
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


def _time_pairs(baseline: Any, subject: Any, values: list[int]) -> tuple[list[float], list[float]]:
    """Tap by tap, alternating which goes first, so a noisy moment costs both sides alike."""
    base, subj = [], []
    for i, v in enumerate(values):
        for fn, out in ((baseline, base), (subject, subj)) if i % 2 == 0 else ((subject, subj), (baseline, base)):
            t0 = time.perf_counter()
            fn(v)
            out.append(time.perf_counter() - t0)
    return base, subj


def run(workdir: Path, *, rounds: int, taps: int, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    (workdir / "raw").mkdir(parents=True, exist_ok=True)
    raw = RawInsert(workdir / "raw" / "raw.db")
    config = harness.device_config(workdir / "device", "mqtt://127.0.0.1:1")
    store = DeviceStore(config.storage.path)
    recorder = Recorder(store, config)
    raw_all: list[float] = []
    rec_all: list[float] = []
    raw_p50: list[float] = []
    rec_p50: list[float] = []
    try:
        for warm in range(20):  # first fsyncs of a new file (and imports) are not the steady state
            raw.tap(4)
            recorder.record(1 + warm % 4)
        for _ in range(rounds):
            values = [rng.randint(1, 4) for _ in range(taps)]
            r, s = _time_pairs(raw.tap, recorder.record, values)
            raw_all += r
            rec_all += s
            raw_p50.append(summary(r)["p50"])
            rec_p50.append(summary(s)["p50"])
    finally:
        raw.close()
        store.close()
    per_round = ratios(rec_p50, raw_p50)
    ratio = median(per_round)
    return {
        "what": "tap to durable (WAL, synchronous=FULL)",
        "rounds": rounds, "taps_per_round": taps,
        "raw_ms": summary(raw_all, 1e3), "recorder_ms": summary(rec_all, 1e3),
        "p50_ratio": ratio, "p50_ratio_per_round": per_round,
        "p99_ratio": summary(rec_all)["p99"] / summary(raw_all)["p99"],
        "target": f"p50 ≤ {TARGET_P50_RATIO}× raw", "met": ratio <= TARGET_P50_RATIO,
        "quantiles_ms": {"raw": quantiles([x * 1e3 for x in raw_all]),
                         "recorder": quantiles([x * 1e3 for x in rec_all])},
    }


def profile_target(workdir: Path, taps: int = 2000) -> Any:
    """What the profiler runs when the target is missed: recorder taps only."""
    config = harness.device_config(workdir / "profile-device", "mqtt://127.0.0.1:1")
    store = DeviceStore(config.storage.path)
    recorder = Recorder(store, config)

    def go() -> None:
        for i in range(taps):
            recorder.record(1 + i % 4)
        store.close()
    return go
