"""The Wi-Fi panel firmware (hardware/firmware_wifi) under the real MicroPython interpreter (webassembly port).

The firmware files are the ones copied to boards; only ``machine``, ``network`` and ``socket`` are faked
(tests/hardware/fakes/: pins as levels, a Wi-Fi station, an in-memory MQTT broker). The runner is the serial
firmware's ``run.mjs``: each scenario a fresh interpreter, files in /flash kept across a "power cut".
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from device import DeviceStore, SyncConfig
from smileloop_core.clock import FakeClock
from smileloop_core.model import Rating
from smileloop_core.mqtt import Backoff
from sync_agent.pump import Pump

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "hardware" / "firmware_wifi"
HOST_TEST = ROOT / "hardware" / "firmware" / "host-test"
HERE = Path(__file__).parent


def micropython(*scenarios: str) -> list[list[str]]:
    """Each scenario's printed lines, one list per power-on."""
    if shutil.which("node") is None or not (HOST_TEST / "node_modules").exists():
        pytest.fail("node and the MicroPython npm package are needed: run 'make test' (it installs them)")
    proc = subprocess.run(["node", str(HOST_TEST / "run.mjs"), str(FIRMWARE), str(HERE / "fakes"),
                           *[str(HERE / "scenarios" / s) for s in scenarios]],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    runs: list[list[str]] = [[]]
    for line in proc.stdout.splitlines():
        if line == "--- power cut ---":
            runs.append([])
        else:
            runs[-1].append(line)
    return runs[:-1]


def cases(lines: list[str]) -> dict[str, dict]:
    out = {}
    for line in lines:
        if line.startswith("{"):
            data = json.loads(line)
            out[data.get("case", "main")] = data
    return out


def test_debounce_response_interval_hours_and_a_full_journal() -> None:
    (lines,) = micropython("wifi_buttons.py")
    c = cases(lines)
    presses = c["presses"]
    # chatter on press and release, a 3 s hold, a 10 ms glitch, chatter that never settles: four presses only
    assert presses["values"] == [1, 4, 2, 3] and presses["seqs"] == [1, 2, 3, 4]
    # within the response interval (3 s) of the previous press: kept, flagged "repeat", as on the kiosk
    assert presses["flags"] == ["", "repeat", "", "repeat"]
    assert presses["thanks"] == [1, 1] and presses["thanks_after"] == 0  # LED and buzzer, then off again
    assert len(set(presses["ids"])) == 4 and all(len(i) == 36 and i[14] == "4" for i in presses["ids"])
    # closed: not recorded (counted for the status); a pushed config that opens the day lets it through
    assert c["hours"]["closed"] == [0, 1, False] and c["hours"]["state"] == ["applied", None]
    assert c["hours"]["after"] == 1
    # closed all day and idle: deep sleep until the next opening (midnight local time, 11 h ahead)
    assert c["sleep"]["plan"] == "deep" and c["sleep"]["wake_in_h"] == 11
    assert c["sleep"]["older"] == ["unchanged", None] and c["sleep"]["bad"][0] == "rejected"
    # full: the new press is refused and counted; the kept ones stay; no thank-you, the error LED instead
    assert c["full"] == {"case": "full", "kept": [1, 2], "refused": 1, "ok": 0, "error": 1}


def test_a_torn_last_record_is_dropped_and_earlier_ones_survive() -> None:
    before, after = micropython("wifi_journal_torn.py", "wifi_journal_after.py")
    ids = cases(before)["main"]["ids"]
    c = cases(after)
    torn = c["torn"]
    assert torn["loaded"] == {"seqs": [1, 2, 3], "values": [1, 2, 3], "torn": 1, "corrupt": 0, "next_seq": 4}
    assert torn["ids"][:3] == ids, "the records before the torn one are intact"
    # the file was rewritten cleanly at load: the next press is whole and numbered on
    assert torn["reloaded"] == [[1, 1], [2, 2], [3, 3], [4, 4]] and torn["torn_again"] == 0
    compact = c["compact"]
    assert compact["pending"] == 0 and compact["next_seq"] == 5, "seq is never reused after the file empties"
    assert compact["size"] < 40, "receipted presses leave the file"
    assert compact["fourth_torn"] == 1 and compact["fourth_pending"] == 0  # a garbled whole last line
    assert compact["mid"] == [1, 3] and compact["mid_corrupt"] == 1  # a bad line in the middle costs only itself


def test_ratings_message_is_byte_for_byte_the_sync_agents(tmp_path: Path) -> None:
    (lines,) = micropython("wifi_encoding.py")
    firmware = next(line for line in lines if line.startswith("PAYLOAD ")).removeprefix("PAYLOAD ")

    def at(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, UTC)

    def rating(rid: str, seq: int, value: int, ms: int, mono_ms: int, flags: tuple[str, ...] = ()) -> Rating:
        return Rating(id=rid, seq=seq, ts=at(ms), scale="smiley4", value=value, location="exit-north",
                      sentiment="negative", boot_id="5f0c9a1e", mono=mono_ms / 1000, flags=flags)

    batch = [rating("0b6f7d3e-4c1a-4d5e-9a53-6a1f0f6f2a10", 17, 1, 1795518902113, 81234512),
             rating("a1c2b3d4-0000-4000-8000-000000000001", 18, 4, 1795518903000, 81235400, ("repeat",)),
             rating("a1c2b3d4-0000-4000-8000-000000000002", 19, 3, 946684800000, 0)]
    clock = FakeClock(start=at(1795518904200), boot="5f0c9a1e")
    clock.advance(81236.6 - clock.monotonic())
    clock.set_wall(at(1795518904200))
    store = DeviceStore(tmp_path / "device.db")
    try:
        pump = Pump(store, SyncConfig(), clock, publish=lambda *a, **k: None, backoff=Backoff(),
                    device_id="panel-1", site="store-042")
        kiosk = pump._encode(batch)  # the very code the kiosk's sync agent publishes with
    finally:
        store.close()
    assert firmware == kiosk
    iso = next(line for line in lines if line.startswith("ISO ")).split()[1:]
    assert iso == [datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
                   for ms in (0, 951782400000, 1795518902113, 4102444799999)]
    secs = next(line for line in lines if line.startswith("SECONDS ")).split()[1:]
    assert secs == [repr(round(ms / 1000, 3)) for ms in (0, 1, 10, 100, 5000, 81234512, 123456789012)]


def test_receipts_delete_dead_links_back_off_and_config_is_applied() -> None:
    (lines,) = micropython("wifi_receipts.py")
    c = cases(lines)
    main = c["main"]
    assert main["subscribed"] == ["smileloop/v1/store-1/panel-1/ack", "smileloop/v1/store-1/panel-1/config"]
    assert main["status0"]["state"] == "online" and main["retained"] is True
    assert {"backlog", "rssi", "version", "boot", "ts"} <= set(main["status0"])
    assert main["will"][0] == "smileloop/v1/store-1/panel-1/status" and main["will"][1]["state"] == "offline"
    first = main["first"]
    assert first["v"] == 1 and first["device"] == "panel-1" and first["site"] == "store-1"
    assert set(first["sent"]) == {"ts", "boot", "mono"} and [r["seq"] for r in first["ratings"]] == [1, 2]
    # one stored, one rejected (both leave the journal), a stray id and a malformed receipt change nothing
    assert main["after_receipt"] == [3]
    # the next batch went at once; without its receipt it is offered again after ack_timeout, same ids
    assert main["resent"] == [[1, 2], [3], [3]]
    assert main["left"] == 0 and main["status"]["backlog"] == 0 and main["status"]["rejected"] == 1
    dead = c["dead"]
    assert dead["took"] <= 2100 and dead["down"][0] is False, "a publish with no PUBACK gives up at the timeout"
    assert dead["gaps"] == [1000, 2000, 4000, 4000, 4000], "full jitter under a doubling cap, never a busy loop"
    assert dead["journal"] == 1 and dead["republished"] == [4, 4], "sent again after the outage, kept until a receipt"
    config = c["config"]
    assert config["interval"] == 5000 and config["version"] == 4
    assert config["reports"][0] == {"version": 4, "state": "applied", "reason": None}
    assert config["reports"][1]["state"] == "rejected"
