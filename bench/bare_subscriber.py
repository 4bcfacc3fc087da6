"""The bare durable subscriber: the least a central worker must do per ratings message, as the drain's baseline.

A plain paho client (MQTT v5, QoS 1, a persistent session, ``manual_ack=True``: each message is acknowledged
to the broker only after its commit, as central does) subscribed to every device's ratings topic. Per message:
``json.loads``, one ``executemany`` of ``INSERT OR IGNORE`` (the rating id is the primary key) in one
transaction of its own (SQLite WAL, ``synchronous=FULL``), a receipt naming every rating on the device's
``ack`` topic (QoS 1), then the acknowledgement. No validation, no clock repair, no alerts, no group commit.

It runs in its own process, like central, so the device's sync agent drains into it unchanged:

    python -m bench.bare_subscriber --broker mqtt://127.0.0.1:1883 --db bare.db
"""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from smileloop_core import topics, wire

_COLS = ("id", "site", "device_id", "location", "scale", "value", "reason", "ts", "seq", "boot_id", "mono",
         "received_at")
SCHEMA = f"CREATE TABLE IF NOT EXISTS ratings (id TEXT PRIMARY KEY, {', '.join(_COLS[1:])})"
INSERT = f"INSERT OR IGNORE INTO ratings ({', '.join(_COLS)}) VALUES ({', '.join('?' * len(_COLS))})"


class BareSubscriber:
    """``BareSubscriber(db).on_message`` stores one message and answers it; ``serve(host, port)`` runs it."""

    def __init__(self, db: Path, client_id: str = "bench-bare") -> None:
        self.conn = sqlite3.connect(str(db), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute(SCHEMA)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                                  manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.stored = 0

    def _on_connect(self, client: mqtt.Client, u: object, flags: object, rc: Any, props: object) -> None:
        client.subscribe(topics.ALL_RATINGS, qos=1)

    def _on_message(self, client: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        parsed = topics.parse_device_topic(msg.topic)
        site, device = (parsed[0], parsed[1]) if parsed else ("", "")
        ratings = json.loads(msg.payload)["ratings"]
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        rows = [(r["id"], site, device, r.get("location"), r.get("scale"), r.get("value"), r.get("reason"),
                 r.get("ts"), r.get("seq"), r.get("boot"), r.get("mono"), now) for r in ratings]
        self.conn.execute("BEGIN")
        self.conn.executemany(INSERT, rows)
        self.conn.execute("COMMIT")
        self.stored += len(rows)
        client.publish(topics.ack(site, device), wire.receipt(now, [[r["id"], r.get("rev", 0)] for r in ratings], []),
                       qos=1)
        client.ack(msg.mid, msg.qos)

    def serve(self, host: str, port: int) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 86400
        self.client.connect(host, port, clean_start=False, properties=props)
        self.client.loop_forever()

    def stop(self) -> None:
        self.client.disconnect()


@click.command()
@click.option("--broker", "broker_url", required=True, help="mqtt://host:port")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--client-id", default="bench-bare", show_default=True)
def main(broker_url: str, db: Path, client_id: str) -> None:
    """Store every rating once and receipt it, nothing else: the drain benchmark's baseline.

    \b
    Example:
        python -m bench.bare_subscriber --broker mqtt://127.0.0.1:1883 --db bare.db
    """
    rest = broker_url.split("://", 1)[-1].split("?", 1)[0]
    host, port = rest.rsplit(":", 1)
    sub = BareSubscriber(db, client_id)
    signal.signal(signal.SIGTERM, lambda *_: sub.stop())
    sub.serve(host, int(port))
    sys.exit(0)


if __name__ == "__main__":
    main()
