"""One hostile device cannot silence central: 5,000 malformed messages through a real Mosquitto into a central
process, with a good kiosk's ratings interleaved. Central stays up, stores every good rating exactly once, and
keeps every rejection on record with its reason."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from smileloop_core import topics
from smileloop_core.clock import utc_iso
from tests.conftest import wait_for

pytestmark = pytest.mark.broker

HOSTILE = 5_000
SITE, EVIL, GOOD = "store-1", "kiosk-evil", "kiosk-good"


def _rating(seq: int, **over: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "seq": seq, "ts": utc_iso(datetime.now(UTC)), "scale": "smiley4", "value": 4,
            "location": "exit", "reason": None, **over}


def _msg(device: str, ratings: list[Any], **over: Any) -> bytes:
    return json.dumps({"v": 1, "device": device, "site": SITE, "ratings": ratings, **over}).encode()


def hostile(rng: random.Random, i: int) -> tuple[str, bytes]:
    """One message that must be rejected whole (exactly one rejection row), of one of twelve kinds."""
    topic = topics.ratings(SITE, EVIL)
    kind = i % 12
    if kind == 0:
        return topic, b"\xff" + rng.randbytes(rng.randint(0, 400))  # binary junk
    if kind == 1:
        n = rng.randint(2_000, 60_000)
        return topic, b"[" * n + b"]" * n  # deep nesting (the RecursionError that stalled central)
    if kind == 2:
        return topic, b'{"v":1,"device":"kiosk-evil","site":"store-1","ratings":' + b"[" * 3000 + b"]" * 3000 + b"}"
    if kind == 3:
        return topic, _msg(EVIL, [_rating(i, mono=float("nan"))])  # NaN (json.dumps writes it)
    if kind == 4:
        return topic, _msg(EVIL, "ratings")  # type: ignore[arg-type]  # wrong type
    if kind == 5:
        return topic, _msg(GOOD, [_rating(i)])  # payload names another device than the topic
    if kind == 6:
        return topics.ratings(SITE, "kiosk évil 1"), _msg("kiosk évil 1", [_rating(i)])  # a bad id in the topic
    if kind == 7:
        return topic, b"x" * 1_000_001 if i % 240 == 7 else b'{"v": 2}'  # oversize (a few), wrong version
    if kind == 8:
        return topic, _msg(EVIL, [])  # nothing in it
    if kind == 9:
        return topic, _msg(EVIL, [{}] * 10_001)  # too many ratings
    if kind == 10:
        return topic, json.dumps({"v": 1, "device": "k" * 100_000}).encode()  # a huge string
    return topic, _msg(EVIL, [_rating(i)], v=float("inf"))  # Infinity


def test_five_thousand_hostile_messages_never_block_a_good_kiosk(broker, tmp_path: Path, spawn) -> None:
    db = tmp_path / "central.db"
    proc = spawn([sys.executable, "-m", "smileloop", "central", "--broker", broker.url, "--db", str(db)],
                 stdout=(tmp_path / "central.log").open("wb"), stderr=subprocess.STDOUT,
                 env={**os.environ, "PYTHONUNBUFFERED": "1"})
    rng = random.Random(20261203)
    receipts: list[dict[str, Any]] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hostile-test", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(50)
    client.max_queued_messages_set(0)
    client.on_message = lambda c, u, m: receipts.append(json.loads(m.payload))
    client.connect("127.0.0.1", broker.port)
    client.subscribe(topics.ack(SITE, GOOD), qos=1)
    client.loop_start()
    try:
        probe = _rating(1)  # central is up once it receipts a first good message
        wait_for(lambda: client.publish(topics.ratings(SITE, GOOD), _msg(GOOD, [probe]), qos=1) and receipts,
                 30, interval=0.5, message="central's first receipt")
        good_ids = {probe["id"]}
        good_messages = []
        for i in range(HOSTILE):
            client.publish(*hostile(rng, i), qos=1).wait_for_publish(10)
            if i % 20 == 0:  # a good kiosk keeps sending, some messages twice (redelivery after a lost receipt)
                batch = [_rating(2 + i + j, value=rng.choice((1, 2, 3, 4))) for j in range(3)]
                good_ids.update(r["id"] for r in batch)
                good_messages.append(_msg(GOOD, batch))
                for _ in range(2 if i % 40 == 0 else 1):
                    client.publish(topics.ratings(SITE, GOOD), good_messages[-1], qos=1).wait_for_publish(10)

        def counts() -> tuple[int, int] | None:
            with sqlite3.connect(db, timeout=10) as conn:
                stored = conn.execute("SELECT count(*) FROM ratings WHERE device_id = ?", (GOOD,)).fetchone()[0]
                rejected = conn.execute("SELECT count(*) FROM rejected WHERE topic NOT LIKE ?",
                                        (f"%/{GOOD}/%",)).fetchone()[0]
            return (stored, rejected) if stored == len(good_ids) and rejected >= HOSTILE else None

        stored, rejected = wait_for(counts, 120, interval=0.5, message="every good rating and every rejection")
        assert proc.poll() is None, "central died"
        assert rejected == HOSTILE  # one row each: nothing rejected twice, nothing lost
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM rejected WHERE reason IS NULL OR reason = ''").fetchone()[0] == 0
            assert conn.execute("SELECT count(DISTINCT id) FROM ratings").fetchone()[0] == stored == len(good_ids)
            reasons = {r for (r,) in conn.execute("SELECT reason FROM rejected")}
        for expected in ("not JSON", "JSON arrays and objects", "NaN", "does not match the topic",
                         "not a valid identifier", "at most 10000", "bytes; at most"):
            assert any(expected in r for r in reasons), expected
        # the good kiosk was receipted throughout: every id it sent came back as stored
        wait_for(lambda: {rid for r in receipts for rid, _ in r["stored"]} >= good_ids, 20,
                 message="a receipt for every good rating")
        assert {rid for r in receipts for rid, _ in r["stored"]} == good_ids
    finally:
        client.loop_stop()
        client.disconnect()
