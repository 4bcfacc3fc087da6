"""The harness's accounting can fail: a missing, a doubled or an unknown rating each turn the verdict red."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bench.chaos.harness import ChaosReport, _account


def _dbs(tmp_path: Path, device: list[tuple[str, int, int]], central: list[tuple[str, int]]) -> tuple[Path, Path]:
    dev, cen = tmp_path / "device.db", tmp_path / "central.db"
    with sqlite3.connect(dev) as c:
        c.execute("CREATE TABLE ratings (id TEXT, seq INTEGER, state INTEGER)")
        c.executemany("INSERT INTO ratings VALUES (?, ?, ?)", device)
    with sqlite3.connect(cen) as c:
        c.execute("CREATE TABLE ratings (id TEXT, device_id TEXT, seq INTEGER, ts TEXT, received_at TEXT)")
        c.executemany("INSERT INTO ratings VALUES (?, 'd', ?, '2026-01-01T00:00:00Z', '2026-01-01T00:00:02Z')",
                      central)
    return dev, cen


def account(tmp_path: Path, ledger: set[str], device, central) -> ChaosReport:
    report = ChaosReport()
    dev, cen = _dbs(tmp_path, device, central)
    report.drain_seconds = 1.0
    _account(report, ledger, dev, cen)
    return report


def test_all_there_once_is_ok(tmp_path: Path):
    r = account(tmp_path, {"a", "b"}, [("a", 1, 2), ("b", 2, 2), ("c", 3, 2)], [("a", 1), ("b", 2), ("c", 3)])
    assert r.ok and (r.lost, r.duplicated, r.unconfirmed, r.worst_delay_seconds) == (0, 0, 1, 2.0)


def test_a_made_tap_missing_at_central_is_lost(tmp_path: Path):
    r = account(tmp_path, {"a", "b"}, [("a", 1, 2), ("b", 2, 2)], [("a", 1)])
    assert not r.ok and r.lost == 1


def test_a_made_tap_missing_on_the_device_is_lost(tmp_path: Path):
    r = account(tmp_path, {"a", "b"}, [("a", 1, 2)], [("a", 1), ("b", 2)])
    assert not r.ok and r.lost == 1 and r.phantom == 1


def test_one_tap_stored_twice_is_duplicated(tmp_path: Path):
    r = account(tmp_path, {"a", "b"}, [("a", 1, 2), ("b", 2, 2)], [("a", 1), ("b", 2), ("a", 1)])
    assert not r.ok and r.duplicated == 2  # by id, and by device seq


def test_still_queued_at_the_end_is_late_not_lost_but_not_ok(tmp_path: Path):
    r = account(tmp_path, {"a", "b"}, [("a", 1, 2), ("b", 2, 0)], [("a", 1)])
    assert r.lost == 0 and r.undelivered_on_device == 1 and not r.ok
