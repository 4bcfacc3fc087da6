"""Central's ingest speed, without a broker: ``python -m central.bench [--db postgresql://…] [--batch 100]``.

Each message goes through ``CentralService.handle`` — validate, clock repair, store, receipt, rating and window
rules, alerts, their MQTT delivery rows — exactly as from the broker (the publishes find no connection and
are recorded as pending, as they would be during an outage). Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import json
import logging
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from central.service import CentralService
from central.store import CentralStore
from smileloop_core.clock import utc_iso
from smileloop_core.mqtt import BrokerSettings


def messages(count: int, batch: int, negatives: float, seed: int = 1) -> list[tuple[str, bytes]]:
    """Ratings messages from 10 kiosks at 10 locations of one site, the last two hours."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(hours=2)
    out, seq = [], 0
    for m in range(count):
        device = f"kiosk-{m % 10}"
        ratings = []
        for _ in range(batch):
            seq += 1
            value = 1 if rng.random() < negatives else rng.choice([3, 4])
            ratings.append({"id": str(uuid.uuid4()), "seq": seq, "ts": utc_iso(start + timedelta(seconds=seq)),
                            "scale": "smiley4", "value": value, "location": f"loc-{m % 10}"})
        body = {"v": 1, "device": device, "site": "store-1", "ratings": ratings}
        out.append((f"smileloop/v1/store-1/{device}/ratings", json.dumps(body).encode()))
    return out


@click.command()
@click.option("--db", "target", help="postgresql:// URL (a throw-away schema is used); default a temporary SQLite.")
@click.option("--batch", default=100, show_default=True, help="Ratings per message.")
@click.option("--messages", "count", default=100, show_default=True)
@click.option("--negatives", default=0.1, show_default=True, help="Share of negative ratings.")
def main(target: str | None, batch: int, count: int, negatives: float) -> None:
    """Measure messages and ratings per second through central's handler.

    \b
    Example:
        python -m central.bench --batch 1 --messages 300
    """
    logging.disable(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as tmp:
        run(CentralStore(target, schema=f"bench_{uuid.uuid4().hex[:8]}") if target else
            CentralStore(Path(tmp) / "central.db"), batch, count, negatives)


def run(store: CentralStore, batch: int, count: int, negatives: float) -> None:
    service = CentralService(store, BrokerSettings.from_url("mqtt://127.0.0.1:1"))
    latencies = []
    payloads = messages(count, batch, negatives)
    started = time.perf_counter()
    for topic, payload in payloads:
        t0 = time.perf_counter()
        service.handle(topic, payload)
        latencies.append(time.perf_counter() - t0)
    total = time.perf_counter() - started
    latencies.sort()
    p50, p99 = statistics.median(latencies) * 1000, latencies[int(len(latencies) * 0.99) - 1] * 1000
    click.echo(f"{store.dialect} batch={batch}: {count / total:.0f} msg/s, {count * batch / total:.0f} ratings/s, "
               f"p50 {p50:.1f} ms, p99 {p99:.1f} ms per message; {store.count('alerts')} alerts")
    store.drop()
    store.close()


if __name__ == "__main__":
    main()
