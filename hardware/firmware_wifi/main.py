# Board entry point (ESP32-S3 with MicroPython): wires app.py, journal.py and uplink.py to real pins, the
# Wi-Fi radio, sockets and sleep. Everything that decides anything lives in those modules (tested on a PC);
# this file only assembles them. Copied to the board by `smileloop provision device new --board PORT`.
import os
import socket
import time

import config
import machine
import network
import settings as site
from app import Panel
from hours import Hours
from journal import Journal
from uplink import Clock, Ticks, Uplink
from wifi import Wifi

VERSION = "1.0.0"
sleep_ms = time.sleep_ms  # type: ignore[attr-defined]  # MicroPython's time has it
# MicroPython's embedded ports count seconds from 2000, some from 1970.
EPOCH_MS = 946684800000 if time.gmtime(0)[0] == 2000 else 0


def rtc_ms():
    return time.time() * 1000 + EPOCH_MS


def ntp_ms():
    import ntptime

    ntptime.settime()  # also sets the RTC, which keeps time through deep sleep
    return rtc_ms()


def battery_v(adc):
    if adc is None:
        return None
    return round(adc.read_uv() * 2 / 1e6, 2)  # a 1:2 divider


def run():
    wdt = machine.WDT(timeout=site.WATCHDOG_MS)
    ticks = Ticks(time)
    boot = "%08x" % int.from_bytes(os.urandom(4), "big")  # noqa: UP031
    clock = Clock(ticks, rtc_ms, boot)
    cfg = config.load(site.BOARD_DIR)
    pins = [machine.Pin(p, machine.Pin.IN, machine.Pin.PULL_UP) for p in site.BUTTONS]
    out = [machine.Pin(p, machine.Pin.OUT) if p is not None else None for p in (site.LED_OK, site.LED_ERROR,
                                                                                site.BUZZER)]
    adc = machine.ADC(machine.Pin(site.BATTERY_ADC)) if site.BATTERY_ADC is not None else None
    journal = Journal(site.JOURNAL, limit=site.JOURNAL_MAX)
    panel = Panel(list(zip(pins, site.BUTTONS.values())),  # noqa: B905 (no strict= on MicroPython)
                  journal, clock, Hours(cfg["hours"]), os.urandom,
                  response_interval_ms=int(cfg["response_interval"] * 1000), debounce_ms=site.DEBOUNCE_MS,
                  led_ok=out[0], led_error=out[1], buzzer=out[2], thanks_ms=site.THANKS_MS, scale=cfg["scale"],
                  config_file=site.CENTRAL_CONFIG)
    wifi = Wifi(network, site.WIFI_SSID, site.WIFI_PASSWORD, ticks, sleep_ms=sleep_ms)

    def status_fields():
        fields = panel.status_fields()
        fields["battery_v"] = battery_v(adc)
        fields["journal_depth"] = len(journal.pending)
        return fields

    link = Uplink(cfg, journal, clock, socket, wifi, lambda n: int.from_bytes(os.urandom(4), "big") % n,
                  status_fields=status_fields, on_config=panel.apply_config, ntp_ms=ntp_ms,
                  heartbeat_ms=site.HEARTBEAT_S * 1000, version=VERSION)
    import esp32

    esp32.wake_on_ext1(pins=pins, level=esp32.WAKEUP_ANY_LOW)  # any button wakes light and deep sleep
    if machine.reset_cause() == machine.DEEPSLEEP_RESET and not panel.is_open():
        panel._show(error=1)  # pressed while closed: a short "closed" blink, nothing recorded
        sleep_ms(300)
        panel.closed_presses += 1
    while True:
        wdt.feed()
        panel.step()
        link.step(wait_ms=5)
        plan, ms = panel.sleep_plan(link.settled() or (not journal.pending and not link.up))
        if plan == "light":
            link.disconnect()
            wifi.off()
            machine.lightsleep(min(site.HEARTBEAT_S * 1000, site.WATCHDOG_MS - 5000))
            link.next_try = ticks.ticks_ms()
        elif plan == "deep":
            link.disconnect()
            wifi.off()
            machine.deepsleep(ms if ms is not None else 24 * 3600 * 1000)
        elif not link.up and not panel.busy():
            # presses wait for a broker that is away: sleep out the backoff (a button still wakes the board)
            wait = ticks.ticks_diff(link.next_try, ticks.ticks_ms())
            if wait > 50:
                wifi.off()
                machine.lightsleep(min(wait, site.WATCHDOG_MS - 5000))
            else:
                sleep_ms(5)
        else:
            sleep_ms(5)


run()
