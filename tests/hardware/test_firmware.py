"""The panel firmware under the real MicroPython interpreter (webassembly port, run by Node).

Only ``machine`` is faked (tests/hardware/fakes/machine.py); the firmware files are the ones copied
to boards. Needs ``node`` and the npm package installed by ``make test`` in hardware/firmware/host-test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "hardware" / "firmware"
RUNNER = FIRMWARE / "host-test" / "run.mjs"
HERE = Path(__file__).parent


def run_micropython(*scenarios: str) -> list[list[dict]]:
    if shutil.which("node") is None or not (FIRMWARE / "host-test" / "node_modules").exists():
        pytest.fail("node and the MicroPython npm package are needed: run 'make test' (it installs them)")
    proc = subprocess.run(["node", str(RUNNER), str(FIRMWARE), str(HERE / "fakes"),
                           *[str(HERE / "scenarios" / s) for s in scenarios]],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    runs: list[list[dict]] = [[]]
    for line in proc.stdout.splitlines():
        if line == "--- power cut ---":
            runs.append([])
        elif line.startswith("{"):
            runs[-1].append(json.loads(line))
    assert "micropython" not in proc.stderr.lower(), proc.stderr
    return runs[:-1]


def test_debounced_presses_become_numbered_taps_until_acknowledged():
    (first, second), = run_micropython("taps_and_acks.py")
    assert first["hello"] == "HELLO panel-1 b1 0"
    taps = {int(t.split()[2]): int(t.split()[3]) for t in first["taps"]}  # n -> value; resends repeat an n
    assert taps == {1: 1, 2: 4, 3: 4}, "bounce, a long hold or a 10 ms glitch must not add presses"
    assert first["ok_led"] == 1 and first["wait_led"] == 1
    assert [t.split()[2] for t in second["resent"]] == ["3"], "only the unacknowledged tap is offered again"
    assert second["queue"] == 1


def test_unacknowledged_taps_survive_a_power_cut_and_numbering_goes_on():
    runs = run_micropython("taps_and_acks.py", "power_cut_after.py")
    after = runs[1][0]
    assert [t.split()[1:4] for t in after["after_power_cut"]] == [["b2", "3", "4"]]
    assert [t.split()[2] for t in after["new"]] == ["4"]
    assert after["wait_led"] == 1
