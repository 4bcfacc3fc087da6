"""The kiosk's rules without a window: config pushes, outcomes, PIN lockout, contact, gesture, faults."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from device.config import StaffConfig, StorageConfig, load_config
from kiosk_ui.errors import PinError
from kiosk_ui.flow import KioskFlow, Step
from kiosk_ui.pin import hash_pin, verify_pin
from kiosk_ui.shots import SAMPLE_PIN, SAMPLE_TIME


def test_a_pushed_config_is_taken_between_visitors_and_a_bad_one_is_refused(make_device, caplog):
    d = make_device()
    flow = d.flow
    flow.tap(1)
    assert flow.step is Step.REASON
    d.rewrite_config(scale="nps", question={"en": "Would you recommend us?"})
    d.clock.advance(1)
    flow.tick()
    assert flow.config.survey.scale == "smiley4", "never under a visitor's feet"
    flow.skip()
    d.clock.advance(flow.timings.thanks)
    flow.tick()
    flow.tick()
    assert flow.step is Step.RATING and flow.config.survey.scale == "nps" and flow.config.version == 4
    assert flow.question() == "Would you recommend us?"
    flow.tap(10)
    assert [r["scale"] for r in d.rows()] == ["smiley4", "nps"]
    flow.skip()

    d.config_path.write_text(d.config_path.read_text().replace('scale = "nps"', 'scale = "stars"'))
    with caplog.at_level(logging.ERROR, logger="kiosk_ui.flow"):
        d.clock.advance(flow.timings.thanks)
        flow.tick()
        flow.tick()
    assert flow.step is Step.RATING and flow.config.survey.scale == "nps", "the old config stays in force"
    assert any("survey.scale" in r.getMessage() for r in caplog.records)


def test_outcomes_rotate_between_visitors_in_the_visitors_language(make_device):
    d = make_device()
    items = [{"id": "a", "resolved_at": "2026-11-23T10:00:00Z", "text": {"en": "We fixed the door.",
                                                                       "sv": "Vi lagade dörren."}},
             {"id": "b", "resolved_at": "2026-11-22T10:00:00Z", "text": {"en": "Longer opening hours."}}]
    flow = d.flow
    assert flow.outcome_text() is None
    d.store.replace_outcomes(items, SAMPLE_TIME)
    flow.tick()
    assert flow.outcome_text() == "We fixed the door."
    flow.toggle_language()
    assert flow.outcome_text() == "Vi lagade dörren."
    d.clock.advance(flow.timings.outcome_rotate)
    flow.tick()
    assert flow.outcome_text() == "Longer opening hours.", "no Swedish text: English rather than nothing"
    d.store.replace_outcomes([], SAMPLE_TIME)
    d.clock.advance(1)
    flow.tick()
    assert flow.outcome_text() is None


def test_the_pin_pad_locks_after_repeated_wrong_pins(make_device):
    flow = make_device().flow
    for _ in range(5):
        flow.corner_tap()
    assert flow.step is Step.PIN
    for _ in range(flow.timings.pin_attempts):
        for d in "0000":
            flow.pin_key(d)
        flow.pin_submit()
    for d in SAMPLE_PIN:
        flow.pin_key(d)
    flow.pin_submit()
    assert flow.step is Step.PIN and flow.pin_notice() == "Too many wrong PINs. Try again in 1 min."
    flow.clock.advance(flow.timings.pin_lockout)  # type: ignore[attr-defined]
    flow.touched()
    for d in SAMPLE_PIN:
        flow.pin_key(d)
    flow.pin_submit()
    assert flow.step is Step.STAFF


def test_the_staff_gesture_needs_quick_taps_and_a_configured_pin(make_device):
    d = make_device()
    flow = d.flow
    for _ in range(5):
        flow.corner_tap()
        d.clock.advance(1.0)  # 5 taps over 5 s: slower than the 3 s window
    assert flow.step is Step.RATING
    no_pin = KioskFlow(replace(flow.config, staff=StaffConfig(pin_hash=None)), store=d.store, clock=d.clock)
    for _ in range(5):
        no_pin.corner_tap()
    assert no_pin.step is Step.RATING, "no pin_hash: staff mode is off, not open"


def test_a_bad_contact_is_pointed_out_and_nothing_typed_is_lost(make_device):
    d = make_device()
    flow = d.flow
    flow.tap(2)
    flow.choose_reason("price")
    flow.type_text("too expensive")
    flow.set_consent(True)
    flow.type_text("call me")
    flow.send_details()
    assert flow.step is Step.DETAILS and flow.notice == "Please enter a phone number or an e-mail address."
    assert (flow.comment, flow.contact) == ("too expensive", "call me")
    for _ in "call me":
        flow.backspace()
    flow.type_text("+46 70 123 45 67")
    flow.send_details()
    assert flow.step is Step.THANKS
    (row,) = d.rows()
    assert (row["reason"], row["comment"], row["contact"]) == ("price", "too expensive", "+46 70 123 45 67")


def test_contact_without_consent_is_not_stored(make_device):
    d = make_device()
    flow = d.flow
    flow.tap(1)
    flow.choose_reason("staff")
    flow.set_consent(True)
    flow.type_text("x@example.com")
    flow.set_consent(False)
    flow.type_text("rude")
    flow.send_details()
    (row,) = d.rows()
    assert (row["comment"], row["contact"]) == ("rude", None)


def test_an_unusable_store_at_start_shows_out_of_order(make_device, tmp_path):
    d = make_device()
    d.store.close()
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a database" * 500)
    config = replace(load_config(d.config_path), storage=StorageConfig(path=broken))
    flow = KioskFlow(config, clock=d.clock)
    assert flow.step is Step.OUT_OF_ORDER and flow.recorder is None
    flow.tap(1)
    assert flow.step is Step.OUT_OF_ORDER
    for _ in range(5):
        flow.corner_tap()
    for digit in SAMPLE_PIN:
        flow.pin_key(digit)
    flow.pin_submit()
    assert flow.step is Step.STAFF and any(line.label == "Fault" for line in flow.status())
    flow.leave_staff()
    assert flow.step is Step.OUT_OF_ORDER, "staff leaving does not hide the fault"


def test_pin_hashes_are_salted_and_malformed_ones_are_named():
    a, b = hash_pin("2468"), hash_pin("2468")
    assert a != b and verify_pin("2468", a) and verify_pin("2468", b) and not verify_pin("2467", a)
    with pytest.raises(PinError, match="digits only"):
        hash_pin("24a8")
    with pytest.raises(PinError, match="smileloop kiosk hash-pin"):
        verify_pin("2468", "2468")
    with pytest.raises(PinError, match="keeps the screen live"):
        verify_pin("2468", "pbkdf2_sha256$999999999$00$00")


def test_the_backlight_dims_while_asleep_and_a_broken_one_never_stops_the_kiosk(make_device, tmp_path, caplog):
    from datetime import UTC, datetime

    from kiosk_ui.backlight import BacklightError, SysfsBacklight, follow

    sysfs = tmp_path / "backlight"
    sysfs.mkdir()
    (sysfs / "max_brightness").write_text("255\n")
    (sysfs / "brightness").write_text("0\n")
    d = make_device()
    follow(d.flow, SysfsBacklight(sysfs, dim=0.1))
    assert (sysfs / "brightness").read_text() == "255\n"
    d.clock.set_wall(datetime(2026, 11, 24, 22, 0, tzinfo=UTC))
    d.clock.advance(1)
    d.flow.tick()
    assert d.flow.step is Step.SLEEP and (sysfs / "brightness").read_text() == "26\n"
    (sysfs / "brightness").unlink()
    (sysfs / "brightness").mkdir()  # now unwritable
    d.clock.set_wall(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
    with caplog.at_level(logging.WARNING):
        d.clock.advance(1)
        d.flow.tick()
    assert d.flow.step is Step.RATING
    assert any("cannot set the backlight" in r.getMessage() for r in caplog.records)
    with pytest.raises(BacklightError, match="not a backlight device"):
        SysfsBacklight(tmp_path)


def test_staff_can_close_the_kiosk_but_a_visitor_cannot(make_device):
    d = make_device(reasons_negative=["a", "b", "c", "d", "e", "f", "g", "h"])
    flow = d.flow
    heard: list[str] = []
    flow.listeners.append(heard.append)
    flow.request_exit()
    assert not flow.exit_requested and "exit" not in heard, "only from staff mode"
    flow.tap(1)
    assert flow.reasons() == ("a", "b", "c", "d", "e", "f"), "at most six chips"
    flow.skip()
    flow.reset()
    for _ in range(5):
        flow.corner_tap()
    for digit in SAMPLE_PIN:
        flow.pin_key(digit)
    flow.pin_submit()
    flow.request_exit()
    assert flow.exit_requested and heard[-1] == "exit"


def test_a_language_left_behind_without_a_tap_is_reset_for_the_next_visitor(make_device):
    d = make_device()
    flow = d.flow
    flow.toggle_language()
    assert flow.lang == "sv" and d.rows() == []
    d.clock.advance(flow.config.survey.idle_reset - 1)
    flow.tick()
    assert flow.lang == "sv", "still the same visitor reading"
    d.clock.advance(1)
    flow.tick()
    assert flow.lang == "en" and flow.step is Step.RATING


def test_a_config_push_from_central_reaches_the_kiosk_without_touching_the_staff_file(make_device):
    import json
    import os

    from sync_agent.config_push import apply_push

    d = make_device()
    flow = d.flow
    before = os.stat(d.config_path)
    staff_text = d.config_path.read_text()
    payload = json.dumps({"v": 1, "version": 7, "config": {"survey": {"scale": "csat5"}}}).encode()
    apply_push(flow.config, payload)
    assert d.config_path.read_text() == staff_text
    assert os.stat(d.config_path).st_mtime_ns == before.st_mtime_ns, "the staff file is never rewritten or touched"
    d.clock.advance(flow.timings.thanks)
    flow.tick()
    assert flow.config.survey.scale == "csat5" and flow.config.version == 7
    flow.tap(5)
    assert [r["scale"] for r in d.rows()] == ["csat5"]
