"""The recording process SIGKILLed while it does nothing but write: the file stays sound, no confirmed tap is lost.

The harness kills the recorder at random moments of a paced run; here it taps flat out, so every kill lands
in the middle of writing.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import wait_for, write_device_config


def test_sigkill_during_writes_keeps_the_store_sound_and_every_confirmed_tap(tmp_path: Path):
    cfg = write_device_config(tmp_path, "mqtt://127.0.0.1:1", survey={"response_interval": 0.0})
    db = tmp_path / "device.db"
    confirmed: set[str] = set()
    rng = random.Random(5)
    for round_ in range(5):
        proc = subprocess.Popen([sys.executable, "-m", "bench.chaos.tapper", "--config", str(cfg), "--taps",
                                 "1000000", "--rate", "1000000", "--seed", str(round_)], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        lines: list[bytes] = []
        reader = threading.Thread(target=lines.extend, args=(proc.stdout,), daemon=True)
        reader.start()
        wait_for(lambda seen=lines: len(seen) > 50, timeout=20, message="the recorder tapping")
        time.sleep(rng.uniform(0.0, 0.2))  # a random instant of a process that only writes
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        reader.join(10)
        confirmed.update(line.decode().strip() for line in lines if len(line.strip()) == 36)
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            ids = {r[0] for r in conn.execute("SELECT id FROM ratings")}
            seqs = [r[0] for r in conn.execute("SELECT seq FROM ratings ORDER BY seq")]
        finally:
            conn.close()
        assert confirmed <= ids, f"{len(confirmed - ids)} confirmed taps lost at kill {round_ + 1}"
        assert seqs == list(range(1, len(seqs) + 1)), "seq has a gap or a repeat"
        assert len(ids) - len(confirmed) <= round_ + 1, "at most one unconfirmed tap per kill"
