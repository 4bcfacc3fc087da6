"""``smileloop tap`` and ``smileloop simulate``: record ratings as the kiosk would."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import click

from device.config import DeviceConfig, load_config
from device.recorder import Recorder
from device.store import DeviceStore

config_option = click.option("--config", "config_path", required=True, type=click.Path(path_type=Path),
                             envvar="SMILELOOP_CONFIG", help="Device config TOML (env SMILELOOP_CONFIG).")


def open_recorder(config_path: Path) -> tuple[DeviceConfig, Recorder]:
    config = load_config(config_path)
    return config, Recorder(DeviceStore(config.storage.path), config)


@click.command()
@config_option
@click.argument("value")
@click.option("--reason", help="One of the configured reasons.")
@click.option("--comment", help="Free text from the visitor.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored rating as JSON.")
def tap(config_path: Path, value: str, reason: str | None, comment: str | None, as_json: bool) -> None:
    """Record one rating, as the kiosk would, and print it.

    \b
    Example:
        smileloop tap --config device.toml 1 --reason waiting_time
    """
    _, recorder = open_recorder(config_path)
    rating = recorder.record(value, reason=reason, comment=comment)
    if as_json:
        click.echo(json.dumps(rating.to_wire()))
    else:
        click.echo(f"recorded {rating.scale} {rating.value} ({rating.sentiment}) as #{rating.seq} {rating.id}")


# A realistic mix per scale: mostly happy, a steady trickle of unhappy.
MIX = {
    "smiley4": {1: 0.07, 2: 0.11, 3: 0.32, 4: 0.50},
    "smiley5": {1: 0.05, 2: 0.08, 3: 0.17, 4: 0.35, 5: 0.35},
    "nps": {0: 0.02, 1: 0.01, 2: 0.02, 3: 0.02, 4: 0.03, 5: 0.05, 6: 0.05, 7: 0.12, 8: 0.2, 9: 0.23, 10: 0.25},
    "csat5": {1: 0.05, 2: 0.08, 3: 0.17, 4: 0.35, 5: 0.35},
}


def visitor_taps(recorder: Recorder, n: int, rng: random.Random, rate: float | None = None,
                 with_reasons: float = 0.5) -> int:
    """Record ``n`` taps drawn from :data:`MIX`; ``rate`` taps/second paces them (None: as fast as possible)."""
    weights = MIX[recorder.scale.name]
    values, probs = list(weights), list(weights.values())
    for _ in range(n):
        value = rng.choices(values, probs)[0]
        reason = None
        sentiment = recorder.scale.sentiment(value)
        pool = (recorder.config.survey.reasons_negative if sentiment == "negative"
                else recorder.config.survey.reasons_positive if sentiment == "positive" else ())
        if pool and rng.random() < with_reasons:
            reason = rng.choice(pool)
        recorder.record(value, reason=reason)
        if rate:
            time.sleep(rng.expovariate(rate))
    return n


@click.command()
@config_option
@click.option("--taps", "n", type=click.IntRange(1, 10_000_000), default=100, show_default=True)
@click.option("--rate", type=click.FloatRange(min=0.001), help="Taps per second (default: as fast as possible).")
@click.option("--seed", type=int, help="Random seed, for a repeatable mix.")
def simulate(config_path: Path, n: int, rate: float | None, seed: int | None) -> None:
    """Simulate visitors tapping a realistic mix (for demos and load).

    \b
    Example:
        smileloop simulate --config device.toml --taps 500 --rate 5
    """
    _, recorder = open_recorder(config_path)
    visitor_taps(recorder, n, random.Random(seed), rate)
    backlog = recorder.store.backlog()
    click.echo(f"recorded {n} taps; {backlog.undelivered} waiting for delivery")
