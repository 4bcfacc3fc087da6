"""Against a real Mosquitto started from the tool's own broker config: who may publish and read what."""

from __future__ import annotations

import json
import re
import sqlite3
import ssl

import pytest

from central.service import CentralService
from central.store import CentralStore
from device.config import load_config
from device.recorder import Recorder
from device.store import DeviceStore
from provisioning.acl import claim_reply_topic, claim_request_topic
from provisioning.broker import apply_to_broker
from provisioning.bundle import issue_bundle, write_bundle
from smileloop_core import topics
from smileloop_core.mqtt import BrokerSettings
from sync_agent.agent import SyncAgent
from tests.conftest import wait_for
from tests.provisioning.conftest import Setup, connect_v5

pytestmark = pytest.mark.broker

NOT_AUTHORISED = 135
RATING = {"v": 1, "device": "d", "site": "store-1", "ratings": []}


def device_client(setup: Setup, device_id: str, **kw: object):  # type: ignore[no-untyped-def]
    password = (setup.root / "bundles" / device_id / "password").read_text().strip()
    return connect_v5(setup.port, device_id, password, client_id=f"whatever-{device_id}", **kw)  # type: ignore[arg-type]


def test_provisioned_device_delivers_ratings_to_central(setup: Setup) -> None:
    """The whole product flow on provisioned credentials: tap → sync agent → broker ACL → central (its account)."""
    bundle = setup.new_device("kiosk-e2e")
    config = load_config(bundle / "device.toml")
    assert config.broker.username == "kiosk-e2e" and config.broker.url.startswith("mqtts://")
    recorder = Recorder(DeviceStore(config.storage.path), config)
    recorder.record(1)
    recorder.record(4)
    store = CentralStore(setup.root / "central-e2e.db")
    central = CentralService(store, BrokerSettings.from_url(setup.url, username="central", connect_timeout=2.0)
                             .with_password_file(setup.dir.account_password("central")),
                             client_id="central-e2e")
    central.start()
    try:
        assert central.wait_ready(10), "central (its own account) did not subscribe"
        # The device goes over TLS with its client certificate, password and the generated CA.
        status = SyncAgent(config).drain(30)
        assert status.delivered == 2
        with sqlite3.connect(setup.root / "central-e2e.db") as db:
            rows = db.execute("SELECT device_id, site, value FROM ratings ORDER BY value").fetchall()
        assert rows == [("kiosk-e2e", "store-1", 1), ("kiosk-e2e", "store-1", 4)]
    finally:
        central.stop()
        store.close()
        # Central keeps its session (and subscriptions) on the broker; end it, so no later test finds it there.
        connect_v5(setup.port, "central", setup.account_password("central"), client_id="central-e2e").close()


def test_device_may_publish_only_as_itself(setup: Setup) -> None:
    setup.new_device("kiosk-a")
    setup.new_device("kiosk-b")
    central = connect_v5(setup.port, "central", setup.account_password("central"))
    assert central.subscribe(topics.ALL_RATINGS)[0].value == 1
    a = device_client(setup, "kiosk-a")
    try:
        assert not a.connect_rc[0].is_failure
        assert a.publish(topics.ratings("store-1", "kiosk-a"), RATING).value in (0, 16)  # 16: no subscribers
        # Allowed: 0, or 16 when nobody subscribes to status (whether anyone does depends on other tests).
        assert a.publish(topics.status("store-1", "kiosk-a"), {"v": 1, "state": "online"},
                         retain=True).value in (0, 16)
        # As another device, at another site, or on central's topics: refused, and visibly so under v5.
        for topic in (topics.ratings("store-1", "kiosk-b"), topics.ratings("store-2", "kiosk-a"),
                      topics.status("store-1", "kiosk-b"), topics.config("store-1", "kiosk-a"),
                      topics.ack("store-1", "kiosk-a"), topics.alerts("store-1"),
                      topics.outcomes("store-1", "exit")):
            assert a.publish(topic, RATING).value == NOT_AUTHORISED, topic
        # A sentinel of its own after the refused ones: the broker forwards one client's messages in order,
        # so anything refused-but-leaked would reach central before it.
        assert a.publish(topics.ratings("store-1", "kiosk-a"), RATING).value in (0, 16)
        wait_for(lambda: len(central.messages) >= 2, 5, message="central to receive kiosk-a's own two ratings")
        assert [t for t, _ in central.messages] == [topics.ratings("store-1", "kiosk-a")] * 2
    finally:
        a.close()
        central.close()


def test_device_reads_only_its_own_config_receipts_and_location(setup: Setup) -> None:
    setup.new_device("kiosk-c", location="exit")
    setup.new_device("kiosk-d", location="entrance")
    central = connect_v5(setup.port, "central", setup.account_password("central"))
    try:
        for dev in ("kiosk-c", "kiosk-d"):
            assert central.publish(topics.config("store-1", dev), {"v": 1, "version": 1, "config": {"for": dev}},
                                   retain=True).value in (0, 16)
        for loc in ("exit", "entrance"):
            assert central.publish(topics.outcomes("store-1", loc), {"v": 1, "items": []}, retain=True).value in (0, 16)
    finally:
        central.close()
    c = device_client(setup, "kiosk-c")
    try:
        for own in (topics.config("store-1", "kiosk-c"), topics.ack("store-1", "kiosk-c"),
                    topics.outcomes("store-1", "exit")):
            assert not c.subscribe(own)[0].is_failure, own
        for other in (topics.config("store-1", "kiosk-d"), topics.ratings("store-1", "kiosk-d"),
                      topics.outcomes("store-1", "entrance"), topics.ALL_RATINGS, "#"):
            c.subscribe(other)  # Mosquitto 2.0 grants the SUBACK, then withholds every message it may not read
        # Live messages too: central sends receipts to both devices; kiosk-c sees only its own. Its own receipt,
        # published last, is the sentinel: retained messages of every subscription above, and the receipt for
        # kiosk-d published before it, would all have reached kiosk-c first.
        central = connect_v5(setup.port, "central", setup.account_password("central"))
        try:
            central.publish(topics.ack("store-1", "kiosk-d"), {"v": 1, "stored": [["for-d", 0]]})
            central.publish(topics.ack("store-1", "kiosk-c"), {"v": 1, "stored": [["for-c", 0]]})
        finally:
            central.close()
        wait_for(lambda: any(t.endswith("/ack") for t, _ in c.messages), 5, message="kiosk-c's own receipt")
        got = {t for t, _ in c.messages}  # overlapping subscriptions ("#") deliver a message twice
        assert got == {topics.config("store-1", "kiosk-c"), topics.outcomes("store-1", "exit"),
                       topics.ack("store-1", "kiosk-c")}, got
        assert json.loads(dict(c.messages)[topics.config("store-1", "kiosk-c")])["config"] == {"for": "kiosk-c"}
        acks = {json.loads(p)["stored"][0][0] for t, p in c.messages if t.endswith("/ack")}
        assert acks == {"for-c"}
    finally:
        c.close()


def test_revoked_device_is_refused_at_next_connect(setup: Setup) -> None:
    setup.new_device("kiosk-r")
    live = device_client(setup, "kiosk-r")
    assert not live.connect_rc[0].is_failure
    setup.inventory.revoke("kiosk-r")
    assert apply_to_broker(setup.inventory) == setup.broker.proc.pid  # type: ignore[union-attr]
    # Mosquitto 2.0 re-checks connected clients when it reloads: the revoked device's session ends too.
    wait_for(lambda: not live.client.is_connected(), 5, message="the live session of the revoked device to end")
    live.close()
    # SIGHUP is handled asynchronously: the next connect is refused once the broker has re-read its files.
    def refused() -> bool:
        again = device_client(setup, "kiosk-r")
        again.close()
        return bool(again.connect_rc and again.connect_rc[0].is_failure)
    wait_for(refused, 5, interval=0.1, message="the revoked device to be refused")
    # The id as a whole word: another device's name may start with it ("kiosk-rot").
    files = setup.dir.passwd.read_text() + setup.dir.acl.read_text()
    assert not re.search(r"(?<![\w.-])kiosk-r(?![\w.-])", files), files


def test_rotation_retires_the_old_password(setup: Setup) -> None:
    bundle = setup.new_device("kiosk-rot")
    old = (bundle / "password").read_text().strip()
    write_bundle(issue_bundle(setup.inventory, "kiosk-rot"), bundle)
    assert (bundle / "password").read_text().strip() != old

    def old_refused() -> bool:
        c = connect_v5(setup.port, "kiosk-rot", old)
        c.close()
        return bool(c.connect_rc and c.connect_rc[0].is_failure)
    wait_for(old_refused, 5, interval=0.1, message="the old password to be refused")
    new = device_client(setup, "kiosk-rot")
    assert not new.connect_rc[0].is_failure
    new.close()


def test_claim_account_touches_only_claim_topics(setup: Setup) -> None:
    own, other = "1" * 32, "2" * 32  # client ids
    c = connect_v5(setup.port, "claim", setup.account_password("claim"), client_id=own)
    try:
        assert not c.connect_rc[0].is_failure
        assert c.publish(topics.ratings("store-1", "kiosk-a"), RATING).value == NOT_AUTHORISED
        assert c.publish(topics.status("store-1", "kiosk-a"), RATING).value == NOT_AUTHORISED
        assert c.publish(claim_reply_topic(own), b"{}").value == NOT_AUTHORISED
        assert c.publish(claim_request_topic(other), b"{}").value == NOT_AUTHORISED  # not as another kiosk
        assert c.publish("smileloop/v1/_claim/" + "0" * 32 + "/request", b"{}").value == NOT_AUTHORISED
        assert c.publish(claim_request_topic(own), b"{}").value in (0, 16)
    finally:
        c.close()


def test_unknown_user_and_anonymous_are_refused(setup: Setup) -> None:
    for user, password in (("nobody", "x"), (None, None), ("central", "wrong")):
        c = connect_v5(setup.port, user, password)
        c.close()
        assert c.connect_rc and c.connect_rc[0].is_failure, user


def test_central_shared_subscription_is_allowed(setup: Setup) -> None:
    setup.new_device("kiosk-s")
    central = connect_v5(setup.port, "central", setup.account_password("central"))
    a = device_client(setup, "kiosk-s")
    try:
        assert not central.subscribe(f"$share/workers/{topics.ALL_RATINGS}")[0].is_failure
        a.publish(topics.ratings("store-1", "kiosk-s"), RATING)
        wait_for(lambda: central.messages, 5, message="a rating through the shared subscription")
    finally:
        a.close()
        central.close()


def test_tls_with_generated_certificates_and_a_wrong_ca_fails(setup: Setup) -> None:
    bundle = setup.new_device("kiosk-tls")
    tls = {"ca_certs": str(bundle / "ca.pem"), "certfile": str(bundle / "client.pem"),
           "keyfile": str(bundle / "client.key")}
    password = (bundle / "password").read_text().strip()
    ok = connect_v5(setup.tls_port, "kiosk-tls", password, tls=tls)
    try:
        assert ok.connect_rc and not ok.connect_rc[0].is_failure
        assert ok.publish(topics.ratings("store-1", "kiosk-tls"), RATING).value in (0, 16)
    finally:
        ok.close()
    # Another installation's CA (a fresh broker-config elsewhere) does not vouch for this broker.
    from provisioning.tls import CertificateAuthority

    other = CertificateAuthority.create(setup.root / "other-ca")
    with pytest.raises(ssl.SSLError):
        connect_v5(setup.tls_port, "kiosk-tls", password, tls={**tls, "ca_certs": str(other.cert_path)})
    # A client certificate from another CA is refused by the broker too.
    stranger = other.issue("kiosk-tls")
    (setup.root / "stranger.pem").write_bytes(stranger.cert_pem)
    (setup.root / "stranger.key").write_bytes(stranger.key_pem)
    # With TLS 1.3 the broker's verdict on the client certificate comes after the client's handshake: the
    # connection is dropped before any CONNACK, so "no accepted CONNACK" is the refusal.
    stranger_tls = {**tls, "certfile": str(setup.root / "stranger.pem"), "keyfile": str(setup.root / "stranger.key")}
    try:
        c = connect_v5(setup.tls_port, "kiosk-tls", password, tls=stranger_tls, timeout=2)
        c.close()
        accepted = bool(c.connect_rc) and not c.connect_rc[0].is_failure
    except (ssl.SSLError, OSError):
        accepted = False
    assert not accepted, "a client certificate from another CA was accepted"


def test_last_seen_comes_from_retained_status(setup: Setup) -> None:
    from provisioning.cli import _staff_settings
    from provisioning.status import refresh_last_seen

    setup.new_device("kiosk-seen")
    a = device_client(setup, "kiosk-seen")
    try:
        ts = "2026-11-24T09:15:02.113Z"
        a.publish(topics.status("store-1", "kiosk-seen"), {"v": 1, "state": "online", "ts": ts}, retain=True)
    finally:
        a.close()
    assert refresh_last_seen(setup.inventory, _staff_settings(setup.inventory, None), quiet=0.3) >= 1
    dev = setup.inventory.device("kiosk-seen")
    assert (dev.last_seen, dev.last_state) == (ts, "online")


def test_replaced_certificate_is_refused_after_rotation(setup: Setup) -> None:
    """The old client certificate goes on the CRL the broker reloads: even with the new password it is refused."""
    bundle = setup.new_device("kiosk-crl")
    old_cert, old_key = (bundle / "client.pem").read_bytes(), (bundle / "client.key").read_bytes()
    write_bundle(issue_bundle(setup.inventory, "kiosk-crl"), bundle)
    (setup.root / "old.pem").write_bytes(old_cert)
    (setup.root / "old.key").write_bytes(old_key)
    password = (bundle / "password").read_text().strip()
    fresh = {"ca_certs": str(bundle / "ca.pem"), "certfile": str(bundle / "client.pem"),
             "keyfile": str(bundle / "client.key")}
    stale = {**fresh, "certfile": str(setup.root / "old.pem"), "keyfile": str(setup.root / "old.key")}

    def accepted(tls: dict[str, str]) -> bool:
        try:
            c = connect_v5(setup.tls_port, "kiosk-crl", password, tls=tls, timeout=2)
        except (ssl.SSLError, OSError):
            return False
        c.close()
        return bool(c.connect_rc) and not c.connect_rc[0].is_failure

    wait_for(lambda: accepted(fresh), 5, interval=0.1, message="the new certificate to be accepted")
    assert not accepted(stale)
