"""The staff PIN lockout: it survives a restart, grows with each wrong PIN, and a clock set back cannot end it."""

from __future__ import annotations

import tomllib
from datetime import timedelta

import tomli_w

from device.lockout import load_pin_lockout
from device.store import DeviceStore
from kiosk_ui.flow import Step
from kiosk_ui.pin import hash_pin
from kiosk_ui.shots import SAMPLE_PIN, SAMPLE_TIME

WRONG = "1111"


def test_the_pin_lockout_survives_a_restart(kiosk):
    k = kiosk()
    k.corner()
    for _ in range(k.flow.timings.pin_attempts):
        k.pin(WRONG)
    assert k.screen().name == "pin"
    k.restart(seconds=5)  # killed and started again by systemd: nothing in memory survives
    k.corner()
    assert k.screen().name == "pin"
    k.pin(SAMPLE_PIN)
    assert k.screen().name == "pin", "the right PIN is refused until the lockout is over, restart or not"
    assert "Too many wrong PINs. Try again in 55 s." in k.texts()
    k.tick(55)
    k.corner()
    k.pin(SAMPLE_PIN)
    assert k.screen().name == "staff"


def test_the_lockout_is_told_in_the_visitors_language_and_a_six_digit_pin_opens(kiosk):
    six = "135790"
    k = kiosk()
    data = tomllib.loads(k.device.config_path.read_text())
    data["staff"]["pin_hash"] = hash_pin(six, iterations=1000)
    k.device.config_path.write_text(tomli_w.dumps(data))
    k.restart(seconds=1)
    k.flow.toggle_language()  # Svenska
    k.corner()
    for _ in range(k.flow.timings.pin_attempts):
        k.pin("000000")
    assert "För många fel PIN-koder. Försök igen om 1 min." in k.texts()
    k.tick(15)
    assert "För många fel PIN-koder. Försök igen om 45 s." in k.texts(), "the countdown moves on its own"
    k.tap_text("7")
    assert k.flow.pin_entry == "", "a locked pad takes no digits"
    k.tick(45)  # the idle reset has closed the pad meanwhile
    k.corner()
    k.pin(six)
    assert k.screen().name == "staff"


def enter(flow, digits):
    for d in digits:
        flow.pin_key(d)
    flow.pin_submit()


def wrong(flow, times=1):
    for _ in range(times):
        enter(flow, WRONG)


def locked_twice(d):
    """Wrong PINs until the second lockout (120 s) starts now."""
    wrong(d.flow, d.flow.timings.pin_attempts)
    d.clock.advance(d.flow.staff.locked_for())
    wrong(d.flow)
    assert d.flow.staff.locked_for() == 120


def opened(make_device):
    d = make_device()
    for _ in range(5):
        d.flow.corner_tap()
    assert d.flow.step is Step.PIN
    return d


def test_each_wrong_pin_after_the_first_few_doubles_the_lockout_up_to_an_hour(make_device):
    d = opened(make_device)
    flow, t = d.flow, d.flow.timings
    wrong(flow, t.pin_attempts - 1)
    assert flow.staff.locked_for() == 0, "the first few wrong PINs are free"
    waits = []
    for _ in range(9):
        wrong(flow)
        waits.append(flow.staff.locked_for())
        wrong(flow)  # while locked: refused, not counted
        d.clock.advance(waits[-1])
        flow.touched()
    assert waits == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert d.store.all_ratings() == []


def test_the_right_pin_clears_the_count(make_device):
    d = opened(make_device)
    flow = d.flow
    wrong(flow, flow.timings.pin_attempts)
    d.clock.advance(flow.staff.locked_for())
    enter(flow, SAMPLE_PIN)
    assert flow.step is Step.STAFF
    flow.leave_staff()
    d.restart()
    for _ in range(5):
        d.flow.corner_tap()
    wrong(d.flow, d.flow.timings.pin_attempts - 1)
    assert d.flow.staff.locked_for() == 0, "a new start after the right PIN, restart or not"


def test_a_short_entry_is_not_a_try(make_device):
    d = opened(make_device)
    for _ in range(10):
        enter(d.flow, "12")  # a stray OK, or fewer digits than any PIN has
    assert d.flow.notice == "Wrong PIN" and d.flow.staff.locked_for() == 0


def test_a_reboot_with_the_wall_clock_set_back_restarts_the_lockout_but_never_ends_it(make_device, caplog):
    d = opened(make_device)
    locked_twice(d)
    start = d.clock.now()
    d.clock.advance(20)
    d.clock.reboot("boot-2")  # monotonic time starts again
    d.clock.set_wall(start - timedelta(days=400))  # a dead RTC battery
    d.restart(seconds=0)
    assert d.flow.staff.locked_for() == 120, "at most the lockout's own length: not zero, not 400 days"
    assert "PIN lockout restarted in full" in caplog.text
    d.clock.set_wall(start + timedelta(seconds=25))  # NTP corrects the clock: anchored on this boot now
    assert d.flow.staff.locked_for() == 120
    d.clock.advance(119)
    d.restart(seconds=0)
    assert d.flow.staff.locked_for() == 1


def test_a_reboot_counts_the_time_the_kiosk_was_off(make_device):
    d = opened(make_device)
    locked_twice(d)
    start = d.clock.now()
    d.clock.reboot("boot-2")
    d.clock.set_wall(start + timedelta(seconds=100))
    d.restart(seconds=0)
    assert d.flow.staff.locked_for() == 20
    d.clock.advance(20)
    assert d.flow.staff.locked_for() == 0


def test_a_wall_clock_jump_on_the_same_boot_does_not_end_the_lockout(make_device):
    d = opened(make_device)
    wrong(d.flow, d.flow.timings.pin_attempts)
    d.clock.set_wall(SAMPLE_TIME + timedelta(days=1))
    d.restart(seconds=0)
    assert d.flow.staff.locked_for() == 60, "on the boot that set it, the monotonic clock decides"


def test_a_store_that_cannot_write_still_locks_the_pad_in_memory(make_device, caplog):
    d = opened(make_device)
    d.store.close()  # a failed SD card
    wrong(d.flow, d.flow.timings.pin_attempts)
    assert d.flow.staff.locked_for() == 60
    enter(d.flow, SAMPLE_PIN)
    assert d.flow.step is Step.PIN
    assert "PIN lockout kept in memory only" in caplog.text


def test_a_new_store_file_takes_over_the_stricter_lockout(make_device, tmp_path):
    d = opened(make_device)
    wrong(d.flow, d.flow.timings.pin_attempts)
    d.flow.store = DeviceStore(tmp_path / "elsewhere.db")  # a pushed config moved the store
    try:
        assert d.flow.staff.locked_for() == 60
        assert load_pin_lockout(d.flow.store).failures == 5, "written to the new file too"
    finally:
        d.flow.store.close()
