"""The staff PIN lockout: it survives a restart, grows with each wrong PIN, and a wall clock moved back cannot end it."""

from __future__ import annotations

from kiosk_ui.shots import SAMPLE_PIN

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
