# Helpers for the Wi-Fi panel firmware's scenarios: a hand-moved clock, a panel wired to fake pins, a fake
# Wi-Fi and the in-memory broker of the fake socket module.
import json
import random

import machine
import network
import socket
from app import Panel
from hours import Hours
from journal import Journal
from uplink import Clock, Uplink
from wifi import Wifi

BUTTONS = {2: 1, 3: 2, 4: 3, 5: 4}
LED_OK, LED_ERROR, BUZZER = 6, 7, 8
EPOCH = 1795000000000  # 2026-11-18T...Z, the RTC's ms since 1970 when the scenario starts
SETTINGS = {"device": "panel-1", "site": "store-1", "location": "exit", "scale": "smiley4",
            "host": "broker.local", "port": 1883, "username": "panel-1", "password": "pw"}


class Ticks:
    def __init__(self):
        self.now = 1000

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return a - b


def make(path="journal.log", limit=1000, hours=None, synced=True, response_interval_ms=3000, seed=1):
    random.seed(seed)
    ticks = Ticks()
    clock = Clock(ticks, lambda: EPOCH + ticks.now, "b1")
    clock.synced = synced
    for pin in BUTTONS:
        machine.Pin.levels[pin] = 1
    pins = [(machine.Pin(p, machine.Pin.IN, machine.Pin.PULL_UP), v) for p, v in BUTTONS.items()]
    journal = Journal(path, limit=limit)
    panel = Panel(pins, journal, clock, Hours(hours or {}), lambda n: bytes(random.getrandbits(8) for _ in range(n)),
                  response_interval_ms=response_interval_ms, led_ok=machine.Pin(LED_OK, machine.Pin.OUT),
                  led_error=machine.Pin(LED_ERROR, machine.Pin.OUT), buzzer=machine.Pin(BUZZER, machine.Pin.OUT))
    return ticks, clock, journal, panel


def make_uplink(clock, journal, panel, **kw):
    socket.BROKER.on_wait = lambda s: setattr(clock.ticks, "now", clock.ticks.now + int((s or 0) * 1000) + 1)
    wifi = Wifi(network, "ssid", "pw", clock.ticks)
    return Uplink(SETTINGS, journal, clock, socket, wifi, lambda n: n // 2, status_fields=panel.status_fields,
                  on_config=panel.apply_config, **kw)


def run(ticks, ms, panel=None, link=None, step=5):
    end = ticks.now + ms
    while ticks.now < end:
        ticks.now += step
        if panel is not None:
            panel.step()
        if link is not None:
            link.step()


def press(ticks, panel, value, hold_ms=80, bounce=(0, 1, 0, 1, 0), link=None):
    """Contact chatter first (5 ms flips), then a steady hold, then a bouncing release."""
    pin = [p for p, v in BUTTONS.items() if v == value][0]
    for level in bounce:
        machine.Pin.levels[pin] = level
        run(ticks, 5, panel, link)
    machine.Pin.levels[pin] = 0
    run(ticks, hold_ms, panel, link)
    for level in (1, 0, 1):
        machine.Pin.levels[pin] = level
        run(ticks, 5, panel, link)
    run(ticks, 40, panel, link)


def out(**kw):
    print(json.dumps(kw))
