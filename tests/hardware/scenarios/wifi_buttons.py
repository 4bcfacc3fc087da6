# Debounce with chatter, the response interval, the thank-you, opening hours and a full journal.
import machine
from harness_wifi import BUZZER, EPOCH, LED_ERROR, LED_OK, make, out, press, run

ticks, clock, journal, panel = make()
press(ticks, panel, 1)  # chatter on press and release: one press
thanks = [machine.Pin.levels[LED_OK], machine.Pin.levels[BUZZER]]
run(ticks, 700, panel)
thanks_after = machine.Pin.levels[LED_OK]
press(ticks, panel, 4, hold_ms=3000)  # a long hold: one press
pin2 = 3
machine.Pin.levels[pin2] = 0  # a 10 ms glitch, shorter than the debounce time: no press
run(ticks, 10, panel)
machine.Pin.levels[pin2] = 1
run(ticks, 50, panel)
for _ in range(6):  # chatter that never settles for 30 ms: no press
    machine.Pin.levels[pin2] = 0
    run(ticks, 20, panel)
    machine.Pin.levels[pin2] = 1
    run(ticks, 5, panel)
run(ticks, 3100, panel)
press(ticks, panel, 2)  # after the response interval: no flag
press(ticks, panel, 3)  # within 3 s of the previous press: kept, flagged "repeat"
out(case="presses", values=[p.value for p in journal.pending], seqs=[p.seq for p in journal.pending],
    flags=[p.flags for p in journal.pending], thanks=thanks, thanks_after=thanks_after,
    ids=[p.id for p in journal.pending])

# opening hours: closed all Wednesday (EPOCH is a Wednesday in UTC, 2026-11-18)
ticks, clock, journal, panel = make(path="closed.log", hours={"timezone": "Europe/Stockholm", "wed": "closed"})
press(ticks, panel, 1)
closed = (len(journal.pending), panel.closed_presses, panel.is_open())
state = panel.apply_config(2, {"hours": {"timezone": "Europe/Stockholm", "wed": "00:00-24:00"}}, save=False)
press(ticks, panel, 1)
out(case="hours", closed=closed, state=state, after=len(journal.pending), plan=panel.sleep_plan(True)[0])
ticks, clock, journal, panel = make(path="closed2.log", hours={"timezone": "Europe/Stockholm", "wed": "closed"})
run(ticks, 700, panel)
plan, ms = panel.sleep_plan(True)
out(case="sleep", plan=plan, wake_in_h=ms // 3600000, older=panel.apply_config(0, {}, save=False),
    bad=panel.apply_config(3, {"hours": {"mon": "9-5"}}, save=False))

# a full journal: the press is refused, the visitor gets no thank-you, the error LED lights
ticks, clock, journal, panel = make(path="full.log", limit=2)
press(ticks, panel, 1)
press(ticks, panel, 2)
run(ticks, 700, panel)
press(ticks, panel, 3)
out(case="full", kept=[p.value for p in journal.pending], refused=journal.refused,
    ok=machine.Pin.levels[LED_OK], error=machine.Pin.levels[LED_ERROR])
