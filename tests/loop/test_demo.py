"""``smileloop demo`` as a newcomer runs it: the whole loop, alerts printed, Ctrl-C stops it cleanly.

Each demo runs through the ``spawn`` fixture: whatever happens to the test, the demo and the broker it started
are killed at teardown.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading

import pytest

from tests.conftest import wait_for


@pytest.mark.parametrize("broker", ["mosquitto", "embedded"])
def test_demo_runs_the_whole_loop_and_prints_alerts(tmp_path, broker, spawn):
    proc = spawn([sys.executable, "-m", "smileloop", "demo", "--duration", "4", "--rate", "8", "--seed", "5",
                  "--broker", broker, "--workdir", str(tmp_path)],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err[-3000:]
    m = re.search(r"(\d+) taps recorded, (\d+) stored centrally, (\d+) alerts \((\d+) for unhappy visitors", out)
    assert m, out
    taps, stored, alerts, per_visitor = map(int, m.groups())
    assert taps > 5 and stored == taps
    assert per_visitor >= 1 and alerts >= per_visitor
    assert re.search(r"ALERT  Unhappy visitor at store-042 / exit-north: rated [12].* — \d+ ms after the tap", out)
    assert len(re.findall(r"\d+ ms after the tap", out)) == per_visitor, "each unhappy visitor's alert is shown"
    assert (tmp_path / "central.db").exists()


def test_ctrl_c_stops_everything_cleanly(tmp_path, spawn):
    proc = spawn([sys.executable, "-m", "smileloop", "demo", "--rate", "5", "--workdir", str(tmp_path)],
                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    wait_for(lambda: any("tap #3" in line for line in lines), timeout=30, message="taps flowing")
    proc.send_signal(signal.SIGINT)  # to the demo alone, as a terminal's Ctrl-C would reach it
    assert proc.wait(30) == 0
    reader.join(5)
    assert any("stored centrally" in line for line in lines)
    # nothing left running: the private broker went with it
    broker_pids = subprocess.run(["pgrep", "-f", f"{tmp_path}/broker/mosquitto.conf"], capture_output=True, text=True)
    assert broker_pids.stdout.strip() == ""
