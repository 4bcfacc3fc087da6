import json
import machine
import panel_config as cfg
from harness import Clock, make_panel, press, led

clock = Clock()
lines = []
panel = make_panel(clock, lines)
for pin in cfg.BUTTONS:
    machine.Pin.levels[pin] = 1  # released
press(clock, panel, 1)
ok_after_press = led(cfg.LED_OK)
press(clock, panel, 4)
press(clock, panel, 4, hold_ms=3000)  # a long hold is one press
glitch_pin = [p for p, v in cfg.BUTTONS.items() if v == 2][0]
machine.Pin.levels[glitch_pin] = 0  # a 10 ms glitch, shorter than the debounce time: not a press
clock.advance(10, panel)
machine.Pin.levels[glitch_pin] = 1
clock.advance(50, panel)
taps = [l for l in lines if l.startswith("TAP")]
print(json.dumps({"hello": lines[0], "taps": taps, "ok_led": ok_after_press, "wait_led": led(cfg.LED_WAIT)}))
# the host acknowledges the first two; the third is offered again after RESEND_MS
panel.on_line("ACK b1 1")
panel.on_line("ACK b1 2")
panel.on_line("ACK other-boot 3")  # an ACK for another boot is ignored
panel.on_line("garbage from a newer host")
before = len(lines)
clock.advance(cfg.RESEND_MS + 50, panel)
print(json.dumps({"resent": [l for l in lines[before:] if l.startswith("TAP")], "queue": len(panel.queue.items)}))
