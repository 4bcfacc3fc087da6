"""Backups and restores while central ingests from a real Mosquitto, on SQLite and on PostgreSQL: nothing committed
before the backup is lost, the copy checks out; a kiosk's store backed up and restored by the command."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central.backup import BackupError, backup_central, restore_central
from central.service import CentralService
from central.store import CentralStore
from central.store_backup import table_counts
from device.store import DeviceStore
from smileloop.cli import main
from smileloop_core import topics
from smileloop_core.clock import utc_iso
from smileloop_core.mqtt import BrokerSettings
from tests.central.conftest import BACKENDS, PG_URL, make_store
from tests.conftest import wait_for, write_device_config

pytestmark = pytest.mark.broker


class Kiosk(threading.Thread):
    """Publishes one rating per message, as fast as the broker acknowledges them, until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        settings = BrokerSettings.from_url(url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"k-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.connect(settings.host, settings.port)
        self.client.loop_start()
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        while not self.stop.is_set():
            self.sent += 1
            r = {"id": str(uuid.uuid4()), "seq": self.sent, "ts": utc_iso(datetime.now(UTC)), "scale": "smiley4",
                 "value": 4, "location": "exit"}
            body = {"v": 1, "device": "kiosk-1", "site": "store-1", "ratings": [r]}
            self.client.publish(topics.ratings("store-1", "kiosk-1"), json.dumps(body), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.stop.set()
        self.join(10)
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture(params=BACKENDS)
def live(request: pytest.FixtureRequest, tmp_path: Path, broker: Any) -> Iterator[tuple[CentralStore, CentralService]]:
    store = make_store(request.param, tmp_path)
    service = CentralService(store, BrokerSettings.from_url(broker.url, connect_timeout=2.0), tick_interval=3600.0)
    service.start()
    assert service.wait_ready(10), "central did not subscribe"
    try:
        yield store, service
    finally:
        service.stop()
        store.drop()
        store.close()


def rating_ids(store: CentralStore) -> set[str]:
    return {r["id"] for r in store.query("SELECT id FROM ratings")}


def test_backup_while_ingesting_then_restore_loses_nothing_committed_before(live, broker, tmp_path):
    store, service = live
    kiosk = Kiosk(broker.url)
    kiosk.start()
    try:
        wait_for(lambda: store.count("ratings") >= 200, 30, message="central ingesting")
        committed = rating_ids(store)  # all committed before the backup begins
        schema = getattr(store.db, "schema", None)
        target: str | Path = PG_URL if store.dialect == "postgresql" else store.path or Path()
        out = tmp_path / ("central.dump" if store.dialect == "postgresql" else "backup.db")
        made = backup_central(target, out, schema=schema)
        during = kiosk.sent
        wait_for(lambda: kiosk.sent > during + 50, 30, message="ingest going on after the backup")
    finally:
        kiosk.close()
    assert made.integrity == "ok" and made.bytes > 0
    service.stop()
    final = rating_ids(store)
    tables = table_counts(store)

    if store.dialect == "sqlite":
        restored_at: str | Path = tmp_path / "restored.db"
        result = restore_central(restored_at, out)
        again = CentralStore(restored_at, create=False)
    else:
        store.drop()  # the schema gone, as after losing the server
        result = restore_central(PG_URL, out, schema=schema)
        again = CentralStore(PG_URL, schema=schema)
    try:
        ids = rating_ids(again)
        assert result.integrity == "ok"
        assert committed <= ids, f"{len(committed - ids)} ratings committed before the backup are missing"
        assert ids <= final, "the backup holds nothing central never stored"
        assert result.tables["ratings"] == len(ids)
        assert set(result.tables) == set(tables), "every table is back"
        assert result.tables["_migrations"] == tables["_migrations"]
    finally:
        again.close()


def test_restore_refuses_to_overwrite_a_sqlite_store_without_force(tmp_path):
    CentralStore(tmp_path / "central.db").close()
    backup_central(tmp_path / "central.db", tmp_path / "b.db")
    with pytest.raises(BackupError, match="--force"):
        restore_central(tmp_path / "central.db", tmp_path / "b.db")
    assert restore_central(tmp_path / "central.db", tmp_path / "b.db", force=True).integrity == "ok"
    with pytest.raises(BackupError, match="no central store"):
        backup_central(tmp_path / "nothing.db", tmp_path / "c.db")


def test_cli_backs_up_a_kiosk_store_and_restores_it_on_a_new_card(tmp_path, capsys):
    cfg = write_device_config(tmp_path / "kiosk", "mqtt://127.0.0.1:1")
    for value in ("1", "2", "4"):
        assert main(["tap", "--config", str(cfg), value]) == 0
    before = DeviceStore(tmp_path / "kiosk" / "device.db").all_ratings()
    assert main(["backup", "--device-config", str(cfg), "--out", str(tmp_path / "kiosk-1.db"), "--json"]) == 0
    capsys.readouterr()
    for f in (tmp_path / "kiosk").glob("device.db*"):
        f.unlink()  # the old SD card is gone
    assert main(["restore", "--device-config", str(cfg), "--from", str(tmp_path / "kiosk-1.db"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["integrity"] == "ok"
    assert DeviceStore(tmp_path / "kiosk" / "device.db").all_ratings() == before
    assert main(["restore", "--device-config", str(cfg), "--from", str(tmp_path / "kiosk-1.db")]) == 1, \
        "an existing store is not overwritten without --force"


def test_cli_backup_and_restore_central_sqlite(tmp_path, capsys):
    CentralStore(tmp_path / "central.db").close()
    assert main(["backup", "--db", str(tmp_path / "central.db"), "--out", str(tmp_path / "b.db")]) == 0
    assert "integrity ok" in capsys.readouterr().out
    assert main(["restore", "--db", str(tmp_path / "new.db"), "--from", str(tmp_path / "b.db")]) == 0
    assert "rows in" in capsys.readouterr().out
