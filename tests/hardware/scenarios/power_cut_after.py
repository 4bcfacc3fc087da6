import json
import machine
import panel_config as cfg
from harness import Clock, make_panel, press, led

clock = Clock()
lines = []
panel = make_panel(clock, lines, boot="b2")
for pin in cfg.BUTTONS:
    machine.Pin.levels[pin] = 1
clock.advance(10, panel)
offered = [l for l in lines if l.startswith("TAP")]
press(clock, panel, 3)
new = [l for l in lines if l.startswith("TAP")][len(offered):]
print(json.dumps({"after_power_cut": offered, "new": new, "wait_led": led(cfg.LED_WAIT)}))
