# Three presses in the journal, then the power fails while the fourth record is half written.
from harness_wifi import make, out, press

ticks, clock, journal, panel = make()
for v in (1, 2, 3):
    press(ticks, panel, v)
    ticks.now += 4000
with open("journal.log", "ab") as f:
    f.write(b"P,4,0b6f7d3e-4c1a-4d5e-9a53-6a1f0f6f2a10,4,17950")  # torn: no checksum, no newline
with open("bad.log", "wb") as f:  # another file: whole lines, the last one's content garbled
    pass
out(ids=[p.id for p in journal.pending])
