"""The recording process for the harness: taps through the real Recorder, printing each confirmed tap's id.

A line is printed only after ``Recorder.record`` returned, i.e. once the tap is durable: that is the
"visitor saw thank you" the harness accounts for. The wall clock is injectable:
``SMILELOOP_CLOCK_OFFSET`` (seconds) offsets it from the start, and each SIGUSR1 jumps it by
``SMILELOOP_CLOCK_JUMP`` seconds (default −3600: backwards an hour), as a dead RTC or a bad NTP step would.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from datetime import datetime, timedelta
from types import FrameType

import click

from device.cli import MIX
from device.config import load_config
from device.recorder import Recorder
from device.store import DeviceStore
from smileloop_core.clock import SystemClock


class OffsetClock(SystemClock):
    """The system clocks with the wall clock shifted; monotonic time and the boot id are the real ones."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return super().now() + timedelta(seconds=self.offset)


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--taps", type=click.IntRange(min=0), required=True)
@click.option("--rate", type=click.FloatRange(min=0.1), default=50.0, show_default=True)
@click.option("--seed", type=int, default=0)
def main(config_path: str, taps: int, rate: float, seed: int) -> None:
    """Record TAPS visitor taps at RATE per second; print each durable tap's id on its own line.

    \b
    Example:
        SMILELOOP_CLOCK_OFFSET=-7200 python -m bench.chaos.tapper --config device.toml --taps 100
    """
    clock = OffsetClock(float(os.environ.get("SMILELOOP_CLOCK_OFFSET", "0")))
    jump = float(os.environ.get("SMILELOOP_CLOCK_JUMP", "-3600"))

    def jump_clock(signum: int, frame: FrameType | None) -> None:
        clock.offset += jump

    signal.signal(signal.SIGUSR1, jump_clock)
    config = load_config(config_path)
    recorder = Recorder(DeviceStore(config.storage.path), config, clock=clock)
    rng = random.Random(seed)
    weights = MIX[recorder.scale.name]
    values, probs = list(weights), list(weights.values())
    out = sys.stdout
    next_at = time.monotonic()
    for _ in range(taps):
        rating = recorder.record(rng.choices(values, probs)[0])
        out.write(f"{rating.id}\n")
        out.flush()
        next_at += rng.expovariate(rate)
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)


if __name__ == "__main__":
    main()
