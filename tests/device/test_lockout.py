"""The staff PIN lockout as the device store keeps it: one row that outlives the process, and what is left of it."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from device.errors import StoreError
from device.lockout import PinLockout, load_pin_lockout, save_pin_lockout
from device.store import MIGRATIONS, DeviceStore
from smileloop_core.clock import FakeClock
from smileloop_core.sqlite import connect, migrate


def test_a_saved_lockout_is_read_back_by_the_next_process(tmp_path):
    clock = FakeClock()
    store = DeviceStore(tmp_path / "device.db")
    assert load_pin_lockout(store) == PinLockout(), "no row: a clean slate"
    lockout = PinLockout.start(failures=6, seconds=120, clock=clock)
    save_pin_lockout(store, lockout)
    save_pin_lockout(store, lockout)  # one row, replaced
    store.close()
    again = DeviceStore(tmp_path / "device.db")
    assert load_pin_lockout(again) == lockout
    clock.advance(30)
    assert load_pin_lockout(again).left(clock) == 90
    again.close()


def test_an_older_store_file_gains_the_lockout_table(tmp_path):
    path = tmp_path / "device.db"
    conn = connect(path)
    migrate(conn, [m for m in MIGRATIONS if m[0] != "004_pin_lockout"])
    conn.close()
    store = DeviceStore(path)
    save_pin_lockout(store, PinLockout(failures=1))
    assert load_pin_lockout(store).failures == 1
    names = [r[0] for r in sqlite3.connect(path).execute("SELECT name FROM _migrations ORDER BY rowid")]
    assert names[-1] == "004_pin_lockout"
    store.close()


def test_what_is_left_is_clamped_to_the_lockouts_length():
    clock = FakeClock()
    lockout = PinLockout.start(failures=5, seconds=60, clock=clock)
    clock.set_wall(clock.now() - timedelta(hours=5))  # same boot: the monotonic clock decides
    assert lockout.left(clock) == 60
    clock.reboot("boot-2")
    assert lockout.left(clock) == 60, "after a reboot the wall clock is 5 h behind: the full length, no more"
    moved = lockout.on(clock)
    assert moved.boot_id == "boot-2" and moved.left(clock) == 60
    clock.advance(59.5)
    assert 0 < moved.left(clock) <= 0.5
    clock.advance(1)
    assert moved.left(clock) == 0 and moved.on(clock) is moved
    assert PinLockout.start(failures=3, seconds=0, clock=clock) == PinLockout(failures=3)


def test_a_closed_store_is_a_store_error(tmp_path):
    store = DeviceStore(tmp_path / "device.db")
    store.close()
    with pytest.raises(StoreError, match="PIN lockout"):
        save_pin_lockout(store, PinLockout(failures=1))
    with pytest.raises(StoreError, match="PIN lockout"):
        load_pin_lockout(store)
