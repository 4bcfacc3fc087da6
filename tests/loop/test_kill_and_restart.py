"""SIGKILL the broker mid-drain and the sync agent mid-batch: every rating arrives exactly once.

Real processes throughout: Mosquitto and ``smileloop sync`` are OS processes killed with SIGKILL.
"""

from __future__ import annotations

import random
import signal

from device.cli import visitor_taps
from device.config import load_config
from device.recorder import Recorder
from device.store import DeviceStore
from tests.conftest import wait_for
from tests.loop.helpers import run_smileloop, smileloop_process

TAPS = 1500
# Slow the drain down (≈ 400 ratings/s in batches of 20) so the kill lands in the middle of it.
SLOW_SYNC = {"max_rate": 400, "batch_size": 20, "max_inflight": 5, "ack_timeout": 2, "batch_delay": 0.1,
             "reconnect_min": 0.1, "reconnect_max": 0.5}


def record_backlog(cfg_path) -> set[str]:
    cfg = load_config(cfg_path)
    recorder = Recorder(DeviceStore(cfg.storage.path), cfg)
    visitor_taps(recorder, TAPS, random.Random(7))
    return {r["id"] for r in recorder.store.all_ratings()}


def assert_exactly_once(central, device_ids: set[str]) -> None:
    rows = central.store.query("SELECT id FROM ratings")
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "a rating was stored twice"
    missing = device_ids - set(ids)
    extra = set(ids) - device_ids
    assert not missing, f"{len(missing)} ratings lost"
    assert not extra, f"{len(extra)} ratings central should not have"


def test_broker_sigkill_mid_drain_then_restart_loses_nothing(broker, central, device_config, tmp_path):
    cfg_path = device_config("kiosk-b", sync=SLOW_SYNC)
    device_ids = record_backlog(cfg_path)
    agent = smileloop_process("sync", "--config", str(cfg_path), log=tmp_path / "agent.log")
    try:
        wait_for(lambda: central.store.count("ratings") >= TAPS // 4, timeout=60, message="a quarter delivered")
        broker.kill()  # SIGKILL: whatever Mosquitto held in memory is gone
        assert central.store.count("ratings") < TAPS, "the drain finished before the kill: slow it down"
        broker.start()  # same port; central and the agent reconnect on their own
        wait_for(lambda: central.store.count("ratings") == TAPS, timeout=90, message="all ratings at central")
        store = DeviceStore(load_config(cfg_path).storage.path)
        wait_for(lambda: store.backlog().undelivered == 0, timeout=30, message="every rating receipted")
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
    assert_exactly_once(central, device_ids)


def test_sync_agent_sigkill_mid_batch_then_restart_delivers_exactly_once(broker, central, device_config, tmp_path):
    cfg_path = device_config("kiosk-s", sync=SLOW_SYNC)
    device_ids = record_backlog(cfg_path)
    for _round in range(2):  # kill it twice, at different points of the drain
        agent = smileloop_process("sync", "--config", str(cfg_path), log=tmp_path / "agent.log")
        target = central.store.count("ratings") + TAPS // 4
        wait_for(lambda t=target: central.store.count("ratings") >= t, timeout=60, message="progress")
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
    store = DeviceStore(load_config(cfg_path).storage.path)
    assert store.backlog().undelivered > 0, "the drain finished before the kill: slow it down"
    proc = run_smileloop("sync", "--config", str(cfg_path), "--once", "--timeout", "90")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert store.backlog().undelivered == 0
    assert_exactly_once(central, device_ids)
