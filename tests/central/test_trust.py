"""What central believes (docs/SECURITY.md, "Central"): a device speaks only for its registered location and its
own ratings, and no password or token reaches a log or a screen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from central.store import CentralStore
from smileloop_core import topics
from tests.central.conftest import ORG, PG_URL, TUESDAY_10, pg_problem
from tests.central.test_service import Peer, message, rating, start_service
from tests.conftest import wait_for

pytestmark = pytest.mark.broker


def test_a_spoofed_location_is_rejected_and_pages_nobody_there(broker: Any, tmp_path: Path) -> None:
    store = CentralStore(tmp_path / "central.db")
    store.put_document("org", json.loads(json.dumps(ORG)), TUESDAY_10)  # kiosk-1 stands at store-1 / exit
    service = start_service(broker.url, store)
    peer = Peer(broker.url)
    try:
        home, spoofed = rating(1, seq=1, location="exit"), rating(1, seq=2, location="cafe")
        peer.publish(topics.ratings("store-1", "kiosk-1"), message("kiosk-1", home, spoofed))
        [receipt] = wait_for(lambda: peer.on("/kiosk-1/ack"), 10, message="the receipt")
        assert receipt["stored"] == [[home["id"], 0]]
        assert receipt["rejected"] == [[spoofed["id"], "location 'cafe' is not where kiosk-1 is registered ('exit')"]]
        assert store.query("SELECT location FROM ratings") == [{"location": "exit"}]
        assert {a["location"] for a in store.alerts()} == {"exit"}
        [row] = store.query("SELECT rating_id, reason FROM rejected")
        assert row["rating_id"] == spoofed["id"] and "registered" in row["reason"]
    finally:
        peer.close()
        service.stop()
        store.close()


def test_another_devices_revision_is_ignored(broker: Any, tmp_path: Path) -> None:
    store = CentralStore(tmp_path / "central.db")
    service = start_service(broker.url, store)
    peer = Peer(broker.url)
    try:
        original = rating(1, seq=1, reason="staff", comment="rude at the till")
        peer.publish(topics.ratings("store-1", "kiosk-1"), message("kiosk-1", original))
        wait_for(lambda: peer.on("/kiosk-1/ack"), 10, message="the first receipt")
        forged = {**original, "rev": 5, "comment": "all fine, ignore this", "contact": "attacker@example.com"}
        peer.publish(topics.ratings("store-1", "kiosk-2"), message("kiosk-2", forged))
        [receipt] = wait_for(lambda: peer.on("/kiosk-2/ack"), 10, message="the forger's receipt")
        assert receipt["stored"] == [] and receipt["rejected"][0][0] == original["id"]
        [row] = store.query("SELECT device_id, rev, comment, contact FROM ratings")
        assert row == {"device_id": "kiosk-1", "rev": 0, "comment": "rude at the till", "contact": None}
    finally:
        peer.close()
        service.stop()
        store.close()


def test_no_password_or_token_in_the_output_of_a_whole_central_run(broker: Any, tmp_path: Path) -> None:
    if pg_problem():
        pytest.fail(f"PostgreSQL must answer for this test: {pg_problem()}")
    db_secret, broker_secret, notify_secret = "Db-S3cret-pw", "Mqtt-S3cret-pw", "Notify-S3cret-token"
    db_url = PG_URL.replace("postgres@", f"postgres:{db_secret}@")  # trust auth: the password is not needed
    notify = tmp_path / "notify.urls"
    notify.write_text(f"# the CX team's hook\njson://127.0.0.1:1/hook?token={notify_secret}\n")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    broker_url = f"mqtt://central:{broker_secret}@127.0.0.1:{broker.port}"
    log = tmp_path / "central.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "smileloop", "-vv", "central", "--broker", broker_url, "--db", db_url,
             "--schema", schema, "--notify-file", str(notify)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    peer = Peer(broker.url)
    store: CentralStore | None = None
    try:
        r = rating(1, reason="cleanliness")
        wait_for(lambda: peer.publish(topics.ratings("store-1", "kiosk-1"), message("kiosk-1", r))
                 or peer.on("/kiosk-1/ack"), 30, interval=0.5, message="a receipt from the central process")
        store = CentralStore(PG_URL, schema=schema)
        wait_for(lambda: store.query("SELECT error FROM delivery_attempts WHERE ok = 0"), 20,  # type: ignore[union-attr]
                 message="the failed delivery to the hook (port 1 refuses)")
    finally:
        peer.close()
        proc.terminate()
        proc.wait(15)
        if store is not None:
            store.drop()
            store.close()
    text = log.read_text()
    assert "central: mqtt://central@127.0.0.1" in text and "postgresql://postgres:***@" in text
    assert "delivery alert" in text  # the failure was logged: and without the token
    for secret in (db_secret, broker_secret, notify_secret):
        assert secret not in text, f"{secret} leaked into central's output"
