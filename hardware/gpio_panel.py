"""Buttons and LEDs wired to the kiosk's own GPIO (a Raspberry Pi), through gpiozero.

gpiozero's mock pins do not debounce, and real contacts bounce, so presses are debounced here against
an injectable monotonic clock. Callbacks run on gpiozero's thread; the Recorder's store is thread-safe.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from device import DeviceError, Recorder
from hardware.errors import PanelConfigError
from smileloop_core.clock import Clock, SystemClock

log = logging.getLogger("smileloop.panel")


class GpioPanel:
    """``GpioPanel(recorder, {17: 1, 27: 2, 22: 3, 5: 4}, led_ok=6, led_error=13)``."""

    def __init__(self, recorder: Recorder, buttons: Mapping[int | str, int], *, led_ok: int | str | None = None,
                 led_error: int | str | None = None, pin_factory: Any = None, bounce: float = 0.05,
                 clock: Clock | None = None) -> None:
        from gpiozero import LED, Button

        values = set(recorder.scale.values)
        for pin, value in buttons.items():
            if value not in values:
                raise PanelConfigError(f"button on pin {pin} maps to {value}, outside scale {recorder.scale.name}")
        self.recorder = recorder
        self.clock: Clock = clock or SystemClock()
        self.bounce = bounce
        self._last: dict[int, float] = {}
        self.buttons = []
        for pin, value in buttons.items():
            button = Button(pin, pull_up=True, pin_factory=pin_factory)
            button.when_pressed = lambda _b=None, v=value: self.press(v)
            self.buttons.append(button)
        self.led_ok = LED(led_ok, pin_factory=pin_factory) if led_ok is not None else None
        self.led_error = LED(led_error, pin_factory=pin_factory) if led_error is not None else None

    def press(self, value: int) -> None:
        now = self.clock.monotonic()
        last = self._last.get(value)
        if last is not None and now - last < self.bounce:
            return  # contact bounce, not a second press
        self._last[value] = now
        try:
            self.recorder.record(value)
        except DeviceError:
            log.exception("could not record a button press (%s)", value)
            if self.led_error is not None:
                self.led_error.on()
            return
        if self.led_error is not None:
            self.led_error.off()
        if self.led_ok is not None:
            self.led_ok.blink(on_time=0.6, off_time=0.1, n=1)

    def close(self) -> None:
        for device in [*self.buttons, self.led_ok, self.led_error]:
            if device is not None:
                device.close()
