"""The device's part of an erasure, through a real Mosquitto, a real central and a real sync agent: the retained
request reaches a kiosk that was offline when it was made, the kiosk forgets the details and says so, central
marks the request done; a second one is awaited by ``--wait``."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from central import privacy
from central.store_privacy import PrivacyStore
from device.config import load_config
from device.store import DeviceStore
from smileloop.cli import main
from smileloop_core import model
from sync_agent.agent import SyncAgent
from sync_agent.erase import handle_erase, parse_erase
from tests.conftest import wait_for
from tests.sync.helpers import running

pytestmark = pytest.mark.broker

ADDRESS = "anna.berg@example.com"


def tap(store: DeviceStore, value: int, contact: str | None, comment: str | None) -> str:
    now = datetime.now(UTC)
    extra: dict[str, Any] = {}
    consent = getattr(model, "Consent", None)  # contacts travel with the visitor's consent where the model has it
    if contact and consent is not None:
        extra["consent"] = consent("consent-v1", "en", now)
    rating = store.add(lambda seq: model.Rating(
        id=str(uuid.uuid4()), seq=seq, ts=now, scale="smiley4", value=value, location="exit",
        sentiment="negative" if value <= 2 else "positive", boot_id="b1", mono=float(seq), comment=comment,
        contact=contact, **extra))
    return rating.id


def details(store: DeviceStore, rid: str) -> tuple[str | None, str | None]:
    r = store.get(rid)
    return r.contact, r.comment


def test_an_offline_kiosk_erases_on_connect_and_central_sees_it_done(device_config, central, broker, tmp_path):
    cfg = load_config(device_config())
    device = DeviceStore(cfg.storage.path)
    mine = tap(device, 1, ADDRESS, "call me")
    other = tap(device, 2, "bo@example.com", "too slow")
    SyncAgent(cfg).drain(20)  # delivered; the agent stops: the kiosk is offline now
    db = str(tmp_path / "central.db")
    wait_for(lambda: central.store.query("SELECT contact FROM ratings WHERE id = ?", (mine,)), 10,
             message="central holds the rating")

    assert main(["privacy", "erase", "--db", db, "--contact", ADDRESS, "--broker", broker.url, "--json"]) == 0
    assert details(device, mine) == (ADDRESS, "call me"), "nothing on the device yet: it is offline"
    [request] = PrivacyStore(central.store).requests(pending=True)
    assert (request.device_id, request.rating_ids) == ("kiosk-1", (mine,))

    agent = SyncAgent(cfg)
    with running(agent):
        wait_for(lambda: details(device, mine) == (None, None), 15, message="the kiosk erasing on connect")
        assert details(device, other) == ("bo@example.com", "too slow"), "another visitor's details stay"
        left = privacy.await_devices(central.store, [request], 15)
        assert left == [], "central did not see the device report the request done"
        assert agent.status.erase == {"done": [request.id], "erased": 1, "error": None}

        third = tap(device, 1, None, "the coffee machine is broken")
        agent.wake()
        wait_for(lambda: central.store.query("SELECT id FROM ratings WHERE id = ?", (third,)), 15,
                 message="a third rating delivered")
        assert main(["privacy", "erase", "--db", db, "--rating", third, "--broker", broker.url, "--wait", "20"]) == 0
        assert details(device, third) == (None, None)
    [done] = PrivacyStore(central.store).requests(device="kiosk-1", pending=False)[-1:]
    assert done.done_at is not None and done.erased == 1


def test_a_bad_or_empty_message_erases_nothing_and_says_why(tmp_path: Path):
    store = DeviceStore(tmp_path / "device.db")
    rid = tap(store, 1, ADDRESS, "hi")
    assert handle_erase(store.path, b"") is None
    bad = handle_erase(store.path, b'{"v": 1, "requests": [{"id": "x"}]}')
    assert bad is not None and bad.error and bad.done == ()
    assert details(store, rid) == (ADDRESS, "hi")
    payload = json.dumps({"v": 1, "requests": [{"id": "r1", "ratings": [rid, "unknown"]}]}).encode()
    assert parse_erase(payload) == [("r1", [rid, "unknown"])]
    first = handle_erase(store.path, payload)
    again = handle_erase(store.path, payload)
    assert (first and first.erased, again and again.erased) == (1, 0), "erasing twice erases nothing more"
    assert details(store, rid) == (None, None)
    assert store.integrity_check() == "ok"
