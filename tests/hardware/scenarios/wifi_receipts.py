# Presses go out as v1 ratings messages; central's receipt deletes them; no receipt -> offered again.
import json
import socket
from harness_wifi import make, make_uplink, out, press, run

B = socket.BROKER
ticks, clock, journal, panel = make()
link = make_uplink(clock, journal, panel, ack_timeout_ms=10000, batch_size=2)
link.step()
status0 = [json.loads(p) for t, p, r in B.published if t.endswith("/status")]
for v in (1, 2, 3):
    press(ticks, panel, v)  # recorded while the link is not stepped: they wait in the journal
    ticks.now += 4000
link.step()
msgs = [json.loads(p) for t, p, r in B.published if t == "smileloop/v1/store-1/panel-1/ratings"]
first = msgs[0]
ids = [r["id"] for r in first["ratings"]]
# central's receipt for the first: one stored, one rejected; plus a stray id and a malformed receipt
B.deliver("smileloop/v1/store-1/panel-1/ack", b"not json")
B.deliver("smileloop/v1/store-1/panel-1/ack", json.dumps(
    {"v": 1, "ts": "2026-11-18T10:00:00.000Z", "stored": [[ids[0], 0], ["ffffffff-0000-4000-8000-000000000000", 0]],
     "rejected": [[ids[1], "'value' 7 is outside scale smiley4 (1..4)"]]}).encode())
link.step()
after_receipt = [p.seq for p in journal.pending]
run(ticks, 100, panel, link)
msgs = [json.loads(p) for t, p, r in B.published if t.endswith("/ratings")]
# no receipt for the next batch: after ack_timeout it is offered again, same ids
sent_before = len(msgs)
run(ticks, 11000, panel, link, step=500)
msgs = [json.loads(p) for t, p, r in B.published if t.endswith("/ratings")]
resent = [[r["seq"] for r in m["ratings"]] for m in msgs]
B.deliver("smileloop/v1/store-1/panel-1/ack", json.dumps(
    {"v": 1, "ts": "x", "stored": [[msgs[-1]["ratings"][0]["id"], 0]], "rejected": []}).encode())
run(ticks, 100, panel, link)
status = [json.loads(p) for t, p, r in B.published if t.endswith("/status")][-1]
out(status0=status0[0], will=[B.will[0], json.loads(B.will[1])], subscribed=B.subscribed, first=first,
    after_receipt=after_receipt, resent=resent, left=len(journal.pending), status=status,
    retained=[r for t, p, r in B.published if t.endswith("/status")][0])
# a dead link mid-publish: no PUBACK ever comes; the publish gives up at the timeout, the link backs off
ticks2, clock2, journal2, panel2 = make(path="dead.log")
B.published.clear()
link2 = make_uplink(clock2, journal2, panel2, backoff_min_ms=1000, backoff_max_ms=8000, timeout=2.0)
link2.step()
press(ticks2, panel2, 4)
B.answer = False
t0 = ticks2.now
link2.step()
took = ticks2.now - t0
down = (link2.up, link2.last_error)
B.answer = True
B.up = False  # the broker is away: connects fail, backoff grows (full jitter: here half the cap)
gaps = []
last = None
for _ in range(5):
    while link2.up is False and ticks2.ticks_diff(ticks2.now, link2.next_try) < 0:
        ticks2.now += 100
    gaps.append(link2.next_try - ticks2.now if last is None else None)
    t = ticks2.now
    link2.step()
    gaps[-1] = link2.next_try - t
B.up = True
while not link2.up:
    ticks2.now += 100
    link2.step()
link2.step()
out(case="dead", took=took, down=down, gaps=gaps, journal=len(journal2.pending),
    republished=[json.loads(p)["ratings"][0]["value"] for t, p, r in B.published if t.endswith("/ratings")])
# a config push (retained) is applied and reported on the status
B.deliver("smileloop/v1/store-1/panel-1/config", json.dumps(
    {"v": 1, "version": 4, "config": {"survey": {"response_interval": 5.0}, "hours": {"sun": "closed"}}}).encode(),
    retain=True)
link2.step()
B.deliver("smileloop/v1/store-1/panel-1/config", json.dumps({"v": 1, "version": 5, "config": {"device": {}}}).encode())
link2.step()
st = [json.loads(p) for t, p, r in B.published if t.endswith("/status")]
out(case="config", interval=panel2.response_interval_ms, reports=[s["config"] for s in st[-2:]],
    version=st[-1]["config_version"])
