"""The security review's findings (docs/SECURITY.md), each shown against the real broker or the library.

- a claim needs the code itself: nothing the inventory stores, nor anything on the wire, stands in for it;
- reply topics tell another claimant nothing;
- a certificate is its holder's identity: the claim certificate plus a device's password is not that device;
- identifiers are whole-string checked: a newline id is refused before anything is written;
- claim requests are rate-limited by requester and by code; a code lives at most 7 days;
- the CA key can be kept encrypted with a passphrase that never appears on a command line.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import ssl
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from provisioning.claimbox import open_reply, seal_request
from provisioning.claims import MAX_TTL, ClaimLimits, ClaimResponder, EnrolProfile, claim, create_claim
from provisioning.devices import create_device
from provisioning.errors import BrokerSetupMissing, InvalidInput
from provisioning.inventory import DeviceSpec, Inventory
from smileloop.cli import cli
from smileloop_core import topics
from smileloop_core.clock import FakeClock
from tests.conftest import wait_for
from tests.provisioning.conftest import Setup, connect_v5

NOT_AUTHORISED = 135


def _pub() -> str:
    key = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(key).decode()


# --- claim codes against the real broker ------------------------------------------------------------------------
@pytest.mark.broker
def test_what_the_inventory_stores_gets_nothing(setup: Setup, responder: ClaimResponder) -> None:
    """Someone with a copy of the inventory and a kiosk image's claim account asks with every stored value."""
    create_device(setup.inventory, DeviceSpec(site="store-1", location="exit", device_id="kiosk-victim"))
    code = create_claim(setup.inventory, "kiosk-victim").code
    with sqlite3.connect(setup.inventory.path) as db:
        db.row_factory = sqlite3.Row
        stored = [v for row in db.execute("SELECT * FROM claims WHERE device_id = 'kiosk-victim'")
                  for v in dict(row).values() if isinstance(v, str) and v != "kiosk-victim"]
    profile = EnrolProfile.load(setup.dir.enrol)
    thief = connect_v5(setup.port, "claim", profile.settings.password, client_id="7e1ef0123456789abcdef0123456789a")
    try:
        thief.subscribe(f"{topics.PREFIX}/_claim/#")
        for value in stored:  # as the request topic's id (the old scheme), and as the code in a request
            for level in (value, value[:32]):
                if "/" in level or "+" in level or "#" in level or not level:
                    continue
                thief.client.publish(f"{topics.PREFIX}/_claim/{level}/request",
                                     json.dumps({"v": 1, "pub": _pub(), "code": value}), qos=1)
        # A sentinel: a request on the thief's own topic that the responder answers (a plain refusal). Requests
        # are answered in order, so once it is back, anything the ones before it could have leaked is here too.
        own = f"{topics.PREFIX}/_claim/claim/7e1ef0123456789abcdef0123456789a"
        thief.client.publish(f"{own}/request", b"sentinel", qos=1)
        wait_for(lambda: [t for t, _ in thief.messages if t == f"{own}/reply"], 10, message="the sentinel's answer")
        for topic, payload in thief.messages:
            if topic == f"{own}/reply":
                continue
            assert b"kiosk-victim" not in payload and b'"ok": true' not in payload, payload
    finally:
        thief.close()
    assert setup.inventory.device("kiosk-victim").state == "new"  # nothing was issued
    bundle = claim(profile.settings, code, responder_key=profile.responder_key, timeout=10)  # the kiosk still can
    assert bundle.device.device_id == "kiosk-victim"


@pytest.mark.broker
def test_another_claimant_reading_reply_topics_learns_nothing(setup: Setup, responder: ClaimResponder) -> None:
    create_device(setup.inventory, DeviceSpec(site="store-1", location="exit", device_id="kiosk-private2"))
    code = create_claim(setup.inventory, "kiosk-private2").code
    profile = EnrolProfile.load(setup.dir.enrol)
    snoop = connect_v5(setup.port, "claim", profile.settings.password, client_id="5e00b0123456789abcdef0123456789a")
    try:
        snoop.subscribe(f"{topics.PREFIX}/_claim/#")
        snoop.subscribe("#")
        bundle = claim(profile.settings, code, responder_key=profile.responder_key, timeout=10)
        assert bundle.device.device_id == "kiosk-private2"
        # A sentinel from the snoop's own request topic, answered after the kiosk's: once its answer is here, any
        # copy of the kiosk's reply the broker would have leaked to the snoop is here too.
        own = f"{topics.PREFIX}/_claim/claim/5e00b0123456789abcdef0123456789a"
        snoop.client.publish(f"{own}/request", b"sentinel", qos=1)
        wait_for(lambda: [t for t, _ in snoop.messages if t == f"{own}/reply"], 10, message="the sentinel's answer")
        leaked = [(t, p) for t, p in snoop.messages if t != f"{own}/reply"]
        seen = b"".join(p for _, p in leaked)
        assert b"kiosk-private2" not in seen and not [t for t, _ in leaked if t.endswith("/reply")], seen
    finally:
        snoop.close()


@pytest.mark.broker
def test_claim_certificate_with_a_device_password_is_not_that_device(setup: Setup) -> None:
    """Every kiosk image holds the claim certificate; with a device's password it still is only 'claim'."""
    bundle = setup.new_device("kiosk-cert")
    password = (bundle / "password").read_text().strip()
    enrol = setup.dir.enrol.parent
    claim_tls = {"ca_certs": str(enrol / "ca.pem"), "certfile": str(enrol / "claim.pem"),
                 "keyfile": str(enrol / "claim.key")}
    try:
        c = connect_v5(setup.tls_port, "kiosk-cert", password, tls=claim_tls, timeout=3)
    except (ssl.SSLError, OSError):
        return  # refused outright: fine too
    try:
        if not c.connect_rc or c.connect_rc[0].is_failure:
            return
        assert c.publish(topics.ratings("store-1", "kiosk-cert"), {"v": 1}).value == NOT_AUTHORISED
        assert c.publish(topics.status("store-1", "kiosk-cert"), {"v": 1}).value == NOT_AUTHORISED
    finally:
        c.close()
    # The device's own certificate works (it is its identity), and only for itself.
    own = {**claim_tls, "certfile": str(bundle / "client.pem"), "keyfile": str(bundle / "client.key")}
    d = connect_v5(setup.tls_port, "kiosk-cert", password, tls=own)
    try:
        assert d.connect_rc and not d.connect_rc[0].is_failure
        assert d.publish(topics.ratings("store-1", "kiosk-cert"), {"v": 1}).value in (0, 16)
    finally:
        d.close()


@pytest.mark.broker
def test_a_device_certificate_cannot_claim_another_username(setup: Setup) -> None:
    a = setup.new_device("kiosk-ua")
    setup.new_device("kiosk-ub")
    b_password = (setup.root / "bundles" / "kiosk-ub" / "password").read_text().strip()
    tls = {"ca_certs": str(a / "ca.pem"), "certfile": str(a / "client.pem"), "keyfile": str(a / "client.key")}
    c = connect_v5(setup.tls_port, "kiosk-ub", b_password, tls=tls)
    try:
        if c.connect_rc and not c.connect_rc[0].is_failure:
            assert c.publish(topics.ratings("store-1", "kiosk-ub"), {"v": 1}).value == NOT_AUTHORISED
    finally:
        c.close()


# --- identifiers ----------------------------------------------------------------------------------------------------
def test_newline_ids_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    inv_path = tmp_path / "inv.db"
    runner = CliRunner()

    def run(*args: str) -> object:
        return runner.invoke(cli, ["provision", "--inventory", str(inv_path), *args])

    assert run("broker-config", "--out", str(tmp_path / "b"), "--port", "1883").exit_code == 0  # type: ignore[attr-defined]
    assert run("site", "add", "s1").exit_code == 0  # type: ignore[attr-defined]
    assert run("location", "add", "s1", "door").exit_code == 0  # type: ignore[attr-defined]
    before = (tmp_path / "b" / "passwd").read_text(), (tmp_path / "b" / "acl").read_text()
    for args in (("site", "add", "s2\n"), ("location", "add", "s1", "exit\n"),
                 ("device", "new", "--site", "s1", "--location", "door", "--id", "k1\nuser central",
                  "--out", str(tmp_path / "k")),
                 ("device", "new", "--site", "s1", "--location", "door", "--id", "k1\n", "--out", str(tmp_path / "k"))):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)  # type: ignore[attr-defined]
        assert "not a valid identifier" in result.output  # type: ignore[attr-defined]
    assert ((tmp_path / "b" / "passwd").read_text(), (tmp_path / "b" / "acl").read_text()) == before
    inv = Inventory(inv_path)
    try:
        assert inv.devices() == [] and [s["id"] for s in inv.sites()] == ["s1"]
        for bad in ("k\n", "k\r", "\nk", "k\x00"):
            with pytest.raises(InvalidInput):
                DeviceSpec(site="s1", location="door", device_id=bad)
    finally:
        inv.close()


def test_broker_files_refuse_a_bad_username_that_reached_the_inventory() -> None:
    from provisioning.acl import render_passwd

    with pytest.raises(InvalidInput):
        render_passwd({"k1\nevil": "$7$x"})


# --- claim rules without a broker -----------------------------------------------------------------------------------
@pytest.fixture
def staffed(tmp_path: Path) -> Inventory:
    """An inventory with a broker setup (files only, no running broker) and one new device."""
    from provisioning.broker import write_broker_config

    inv = Inventory(tmp_path / "inv.db", clock=FakeClock())
    write_broker_config(inv, tmp_path / "broker", 1883)
    inv.add_site("s1")
    inv.add_location("s1", "door")
    inv.create_device(DeviceSpec(site="s1", location="door", device_id="k1"))
    return inv


def _ask(responder: ClaimResponder, requester: str, code: str) -> dict:  # type: ignore[type-arg]
    profile = EnrolProfile.load(Path(responder.inventory.setting("broker_dir") or "") / "enrol" / "enrol.toml")
    request, mine = seal_request(profile.responder_key, requester, code)
    return open_reply(requester, mine, responder.answer(requester, json.dumps(request).encode()))


def test_claims_are_rate_limited_by_requester_and_by_code(staffed: Inventory) -> None:
    clock = staffed.clock
    assert isinstance(clock, FakeClock)
    code = create_claim(staffed, "k1").code
    responder = ClaimResponder(staffed, None, clock=clock,  # type: ignore[arg-type]
                               limits=ClaimLimits(per_requester=(3, 60), per_code=(4, 3600), total=(100, 60)))
    for _ in range(3):
        assert "unknown" in _ask(responder, "a" * 32, "ZZZZ-ZZZZ-ZZZZ")["error"]
    assert "too many" in _ask(responder, "a" * 32, code)["error"]  # even the right code: this requester waits
    assert staffed.device("k1").state == "new"
    # Wrong guesses at the same code (its first characters, from many requesters) throttle that code.
    for n in range(4):
        wrong = code[:2] + ("Z" if code[2] != "Z" else "Y") + code[3:]
        assert "unknown" in _ask(responder, f"{n:032x}", wrong)["error"]
    assert "too many" in _ask(responder, "f" * 32, code)["error"]
    assert staffed.device("k1").state == "new"
    clock.advance(3601)
    answer = _ask(responder, "e" * 32, code)
    assert answer["ok"] and answer["device"] == "k1"


def test_a_failed_preparation_uses_the_code_up(staffed: Inventory) -> None:
    code = create_claim(staffed, "k1").code
    with staffed._write() as c:
        c.execute("DELETE FROM settings WHERE key = 'device_url'")
    responder = ClaimResponder(staffed, None)  # type: ignore[arg-type]
    first = _ask(responder, "a" * 32, code)
    assert not first["ok"] and "new code" in first["error"]
    staffed.set_settings(device_url="mqtt://localhost:1883")
    assert "already used" in _ask(responder, "b" * 32, code)["error"]


def test_a_request_without_the_code_is_refused_unsealed_and_spends_nothing(staffed: Inventory) -> None:
    code = create_claim(staffed, "k1").code
    responder = ClaimResponder(staffed, None)  # type: ignore[arg-type]
    for payload in (b"not json", json.dumps({"v": 1, "pub": _pub()}).encode(),
                    json.dumps({"v": 2, "pub": _pub(), "box": "AAAA"}).encode()):
        answer = responder.answer("a" * 32, payload)
        assert answer.get("ok") is not True and "k1" not in json.dumps(answer), payload
    assert _ask(responder, "b" * 32, code)["ok"]


def test_claim_ttl_is_at_most_seven_days(staffed: Inventory, tmp_path: Path) -> None:
    assert timedelta(days=7) == MAX_TTL
    create_claim(staffed, "k1", MAX_TTL)
    with pytest.raises(InvalidInput, match="7 days"):
        create_claim(staffed, "k1", MAX_TTL + timedelta(seconds=1))
    staffed.close()
    result = CliRunner().invoke(cli, ["provision", "--inventory", str(staffed.path), "claim", "new", "k1",
                                      "--ttl", "200"])
    assert result.exit_code == 2 and "7 days" in result.output, result.output
    made = CliRunner().invoke(cli, ["provision", "--inventory", str(staffed.path), "device", "new", "--site", "s1",
                                    "--location", "door", "--id", "k2", "--claim", "--ttl", "1000"])
    assert made.exit_code == 2 and "7 days" in made.output
    assert "k2" not in {d.device_id for d in Inventory(staffed.path).devices()}  # refused before creating


def test_inventory_stores_no_code_and_nothing_fast_to_check(staffed: Inventory) -> None:
    code = create_claim(staffed, "k1").code
    raw = staffed.path.read_bytes() + b"".join(p.read_bytes() for p in staffed.path.parent.glob("inv.db-*"))
    assert code.encode() not in raw and code.replace("-", "").encode() not in raw
    row = dict(staffed._conn.execute("SELECT * FROM claims").fetchone())
    assert "code_id" not in row and str(row["verifier"]).startswith("scrypt$")


def test_old_inventories_open_and_their_codes_are_invalidated(tmp_path: Path) -> None:
    from provisioning.inventory import MIGRATIONS
    from smileloop_core.sqlite import connect, migrate

    path = tmp_path / "old.db"
    conn = connect(path)
    migrate(conn, MIGRATIONS[:1])
    conn.execute("INSERT INTO sites VALUES ('s1', NULL, 'UTC', '2026-01-01T00:00:00Z')")
    conn.execute("INSERT INTO locations VALUES ('s1', 'door', NULL, NULL)")
    conn.execute("INSERT INTO devices (id, site, location, state, scale, question, languages, hours, created_at) "
                 "VALUES ('k1', 's1', 'door', 'new', 'smiley4', '{}', '[\"en\"]', '{}', '2026-01-01T00:00:00Z')")
    conn.execute("INSERT INTO claims VALUES (?, 'k1', '2026-01-01T00:00:00Z', '2099-01-01T00:00:00Z', NULL)",
                 ("a" * 32,))
    conn.commit()
    conn.close()
    inv = Inventory(path)
    try:
        (old,) = inv.claims("k1")
        assert old["used_at"] is not None and "new code" in old["note"]
        assert inv.device("k1").state == "new"
    finally:
        inv.close()


# --- the CA key -----------------------------------------------------------------------------------------------------
def test_ca_key_encrypted_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from provisioning.broker import write_broker_config
    from provisioning.bundle import issue_bundle
    from provisioning.tls import CertificateAuthority

    secret = tmp_path / "ca.pass"
    secret.write_text("correct horse battery staple\n")
    monkeypatch.setenv("SMILELOOP_CA_PASSPHRASE_FILE", str(secret))
    inv = Inventory(tmp_path / "inv.db")
    setup = write_broker_config(inv, tmp_path / "b", 1883, tls_port=8883)
    key_pem = setup.directory.ca_key.read_text()
    assert key_pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    inv.add_site("s1")
    inv.add_location("s1", "door")
    inv.create_device(DeviceSpec(site="s1", location="door", device_id="k1"))
    bundle = issue_bundle(inv, "k1", reload=False)  # a device certificate signed with the encrypted key
    assert b"BEGIN CERTIFICATE" in bundle.files["client.pem"]
    assert "BEGIN X509 CRL" in setup.directory.crl.read_text()
    monkeypatch.delenv("SMILELOOP_CA_PASSPHRASE_FILE")
    with pytest.raises(BrokerSetupMissing, match="SMILELOOP_CA_PASSPHRASE"):
        issue_bundle(inv, "k1", reload=False)
    monkeypatch.setenv("SMILELOOP_CA_PASSPHRASE", "a wrong passphrase")
    with pytest.raises(BrokerSetupMissing, match="passphrase"):
        CertificateAuthority.load(setup.directory.ca_cert, setup.directory.ca_key)
    monkeypatch.setenv("SMILELOOP_CA_PASSPHRASE", "correct horse battery staple")
    assert CertificateAuthority.load(setup.directory.ca_cert, setup.directory.ca_key).issue("k2").serial
    inv.close()


def test_an_existing_plain_ca_key_is_encrypted_on_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from provisioning.broker import write_broker_config

    inv = Inventory(tmp_path / "inv.db")
    setup = write_broker_config(inv, tmp_path / "b", 1883, tls_port=8883)
    assert "ENCRYPTED" not in setup.directory.ca_key.read_text()
    cert_before = setup.directory.ca_cert.read_bytes()
    monkeypatch.setenv("SMILELOOP_CA_PASSPHRASE", "s3cret passphrase")
    write_broker_config(inv, tmp_path / "b", 1883, tls_port=8883)
    assert setup.directory.ca_key.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert setup.directory.ca_cert.read_bytes() == cert_before  # the same CA: devices out there stay valid
    inv.close()


def test_the_passphrase_is_never_a_command_line_option() -> None:
    from provisioning.cli import provision

    def options(cmd: object) -> set[str]:
        import click

        found = {o for p in getattr(cmd, "params", []) for o in p.opts}
        if isinstance(cmd, click.Group):
            for sub in cmd.commands.values():
                found |= options(sub)
        return found

    assert not [o for o in options(provision) if "passphrase" in o and not o.endswith("-file")]



def test_rotating_the_claim_account_replaces_and_revokes_its_certificate(tmp_path: Path) -> None:
    """A leaked kiosk image: the claim account gets a new password and certificate; the old one is revoked."""
    from cryptography import x509

    from provisioning.broker import rotate_account, write_broker_config

    inv = Inventory(tmp_path / "inv.db")
    setup = write_broker_config(inv, tmp_path / "b", 1883, tls_port=8883)
    enrol = setup.directory.enrol.parent
    old = x509.load_pem_x509_certificate((enrol / "claim.pem").read_bytes()).serial_number
    old_password = (enrol / "claim.password").read_text()
    rotate_account(inv, "claim")
    new = x509.load_pem_x509_certificate((enrol / "claim.pem").read_bytes()).serial_number
    assert new != old and old in inv.revoked_serials() and (enrol / "claim.password").read_text() != old_password
    crl = x509.load_pem_x509_crl(setup.directory.crl.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(old) is not None
    assert "use_identity_as_username true" in setup.directory.conf.read_text()
    inv.close()
