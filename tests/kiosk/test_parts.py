"""The kiosk's parts on their own, on a FakeClock: the staff gate, the timers, the config watch, the banner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import tomli_w

from device.config import parse_config
from device.errors import StoreError
from device.store import DeviceStore
from kiosk_ui.pin import hash_pin
from kiosk_ui.shots import SAMPLE_TIME, sample_config
from kiosk_ui.staff import PinResult, StaffGate
from kiosk_ui.steps import Timings
from kiosk_ui.upkeep import ConfigWatch, Every, Outcomes, reopen
from smileloop_core.clock import FakeClock

PIN = hash_pin("2468", iterations=1000)


def _type(gate: StaffGate, pin: str) -> None:
    for digit in pin:
        gate.key(digit)


def test_the_gesture_needs_its_taps_within_the_window():
    clock = FakeClock()
    gate = StaffGate(clock, Timings(staff_taps=3, staff_window=1.0))
    assert [gate.corner_tap() for _ in range(2)] == [False, False]
    clock.advance(1.5)
    assert not gate.corner_tap(), "the first two are too old now"
    assert [gate.corner_tap() for _ in range(2)] == [False, True]


def test_the_pad_locks_after_wrong_pins_even_for_the_right_one_then_opens_again():
    clock = FakeClock()
    gate = StaffGate(clock, Timings(pin_attempts=2, pin_lockout=60.0))
    _type(gate, "0000")
    assert gate.submit(PIN) is PinResult.WRONG and gate.entry == ""
    _type(gate, "0000")
    assert gate.submit(PIN) is PinResult.LOCKED
    _type(gate, "2468")
    assert gate.submit(PIN) is PinResult.LOCKED
    clock.advance(60)
    _type(gate, "2468")
    assert gate.submit(PIN) is PinResult.OPEN


def test_no_pin_hash_never_opens_and_the_pad_takes_only_digits_up_to_twelve():
    gate = StaffGate(FakeClock(), Timings())
    assert not gate.key("x")
    _type(gate, "1" * 20)
    assert gate.entry == "1" * 12
    assert gate.submit(None) is PinResult.WRONG


def test_every_is_due_once_per_period_and_restart_counts_afresh():
    clock = FakeClock()
    timer = Every(clock, 10.0, first=5.0)
    assert not timer.due()
    clock.advance(5)
    assert timer.due() and not timer.due()
    clock.advance(9)
    timer.restart()
    clock.advance(9)
    assert not timer.due()
    clock.advance(1)
    assert timer.due()


def test_config_watch_loads_only_a_changed_file_and_keeps_the_old_one_if_bad(tmp_path: Path):
    path = tmp_path / "device.toml"
    path.write_text(tomli_w.dumps(sample_config(tmp_path)))
    watch = ConfigWatch(path)
    current = parse_config(sample_config(tmp_path), str(path), tmp_path)
    assert watch.reload(current) is None, "unchanged"
    data = sample_config(tmp_path, scale="nps")
    data["meta"]["version"] = 4
    path.write_text(tomli_w.dumps(data))
    os.utime(path, ns=(1, 1))
    new = watch.reload(current)
    assert new is not None and new.survey.scale == "nps" and new.version == 4
    path.write_text(path.read_text().replace('"nps"', '"stars"'))
    assert watch.reload(new) is None, "refused: not a scale"


def test_outcomes_banner_rotates_and_falls_back_to_english(tmp_path: Path):
    store = DeviceStore(tmp_path / "device.db")
    banner = Outcomes()
    assert not banner.refresh(store) and banner.text("sv") is None
    store.replace_outcomes([{"id": "a", "resolved_at": "2026-11-23", "text": {"en": "Fixed.", "sv": "Lagat."}},
                            {"id": "b", "resolved_at": "2026-11-22", "text": {"en": "Longer hours."}}], SAMPLE_TIME)
    assert banner.refresh(store) and not banner.refresh(store)
    assert banner.text("sv") == "Lagat."
    assert banner.rotate() and banner.text("sv") == "Longer hours."
    store.close()
    assert not banner.refresh(store), "a closed store is logged, the banner keeps what it has"


def test_reopen_raises_store_error_for_a_broken_file(tmp_path: Path):
    broken = tmp_path / "device.db"
    broken.write_bytes(b"not a database" * 100)
    config = parse_config(sample_config(tmp_path), str(tmp_path / "device.toml"), tmp_path)
    with pytest.raises(StoreError, match=r"device\.db"):
        reopen(config, FakeClock())
