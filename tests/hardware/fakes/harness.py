# Helpers for firmware scenarios: a hand-moved clock, a captured serial line, button presses with bounce.
import os
import time

import machine
import panel_config as cfg
from panel import Panel


class Clock:
    def __init__(self):
        self.now = 1000

    def ticks_ms(self):
        return self.now

    def advance(self, ms, panel=None, step=5):
        end = self.now + ms
        while self.now < end:
            self.now += step
            if panel is not None:
                panel.step()


def make_panel(clock, lines, boot="b1"):
    buttons = [(machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP), value) for pin, value in cfg.BUTTONS.items()]
    return Panel(buttons, lines.append, clock.ticks_ms, time.ticks_diff, os, boot, cfg.PANEL_ID,
                 led_ok=machine.Pin(cfg.LED_OK, machine.Pin.OUT), led_wait=machine.Pin(cfg.LED_WAIT, machine.Pin.OUT),
                 debounce_ms=cfg.DEBOUNCE_MS, resend_ms=cfg.RESEND_MS, queue_file=cfg.QUEUE_FILE,
                 queue_max=cfg.QUEUE_MAX)


def pin_for(value):
    for pin, v in cfg.BUTTONS.items():
        if v == value:
            return pin


def press(clock, panel, value, hold_ms=80, bounce=(0, 1, 0, 1, 0)):
    """Contact bounce first (5 ms flips), then a steady hold, then release."""
    pin = pin_for(value)
    for level in bounce:
        machine.Pin.levels[pin] = level
        clock.advance(5, panel)
    machine.Pin.levels[pin] = 0
    clock.advance(hold_ms, panel)
    machine.Pin.levels[pin] = 1
    clock.advance(20, panel)


def led(pin):
    return machine.Pin.levels.get(pin, 0)
