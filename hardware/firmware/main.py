# Board entry point: wires panel.py to real pins and the USB serial line. Copied to the board with
#   smileloop panel flash --port /dev/ttyACM0
import os
import select
import sys
import time

import machine
import panel_config as cfg
from panel import Panel


def boot_id():
    try:
        return "%08x" % int.from_bytes(os.urandom(4), "big")
    except Exception:
        return "%08x" % (time.ticks_ms() & 0xFFFFFFFF)


def run():
    buttons = [(machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP), value) for pin, value in cfg.BUTTONS.items()]
    led_ok = machine.Pin(cfg.LED_OK, machine.Pin.OUT) if cfg.LED_OK is not None else None
    led_wait = machine.Pin(cfg.LED_WAIT, machine.Pin.OUT) if cfg.LED_WAIT is not None else None

    def write_line(text):
        sys.stdout.write(text + "\n")

    p = Panel(buttons, write_line, time.ticks_ms, time.ticks_diff, os, boot_id(), cfg.PANEL_ID,
              led_ok=led_ok, led_wait=led_wait, debounce_ms=cfg.DEBOUNCE_MS, resend_ms=cfg.RESEND_MS,
              queue_file=cfg.QUEUE_FILE, queue_max=cfg.QUEUE_MAX)
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    buf = ""
    while True:
        p.step()
        while poller.poll(0):
            ch = sys.stdin.read(1)
            if ch == "\n":
                p.on_line(buf)
                buf = ""
            elif len(buf) < 80:
                buf += ch
        time.sleep_ms(5)


run()
