# After the power cut: the torn record is dropped, the three before it are whole, numbering goes on.
from harness_wifi import make, out, press
from journal import Journal

ticks, clock, journal, panel = make(seed=2)
loaded = dict(seqs=[p.seq for p in journal.pending], values=[p.value for p in journal.pending],
              torn=journal.torn, corrupt=journal.corrupt, next_seq=journal.next_seq)
press(ticks, panel, 4)
again = Journal("journal.log")
out(case="torn", loaded=loaded, ids=[p.id for p in journal.pending],
    reloaded=[[p.seq, p.value] for p in again.pending], torn_again=again.torn)
# receipted presses leave the file; the count goes on after compaction empties it
again.remove([p.id for p in again.pending[:3]])
again.remove([again.pending[0].id])
third = Journal("journal.log")
size = len(open("journal.log", "rb").read())
# a whole last line whose content is garbled (a page written with the wrong bytes) is dropped too
with open("journal.log", "ab") as f:
    f.write(b"P,5,x,1,0,b1,0,*00000000\n")
fourth = Journal("journal.log")
# a garbled line in the middle costs that line only
lines = open("journal.log", "rb").read().split(b"\n")
j = Journal("mid.log")
for v in (1, 2, 3):
    j.add(v, 0, "b1", v * 1000, "", "id-%d" % v)
data = open("mid.log", "rb").read().split(b"\n")
data[1] = data[1].replace(b"P,2", b"P,9")
open("mid.log", "wb").write(b"\n".join(data))
mid = Journal("mid.log")
out(case="compact", pending=len(third.pending), next_seq=third.next_seq, size=size, fourth_torn=fourth.torn,
    fourth_pending=len(fourth.pending), mid=[p.seq for p in mid.pending], mid_corrupt=mid.corrupt)
