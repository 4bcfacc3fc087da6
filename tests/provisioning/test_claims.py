"""Claim codes against the real broker: a kiosk fetches its own bundle once; used/expired codes are refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from device.config import load_config
from provisioning.claims import ClaimResponder, EnrolProfile, claim, create_claim, normalize_code
from provisioning.devices import create_device
from provisioning.errors import ClaimRefused, ClaimTimeout, InvalidInput
from provisioning.inventory import DeviceSpec, Inventory
from smileloop.cli import cli
from smileloop_core import topics
from smileloop_core.clock import FakeClock
from smileloop_core.mosquitto import Mosquitto, free_port
from smileloop_core.mqtt import BrokerSettings
from tests.provisioning.conftest import Setup, connect_v5

pytestmark = pytest.mark.broker


def test_claim_code_works_exactly_once(setup: Setup, responder: ClaimResponder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    create_device(setup.inventory, DeviceSpec(site="store-1", location="exit", device_id="kiosk-claimed",
                                              languages=("en", "sv"), hours={"sun": "closed"}))
    code = create_claim(setup.inventory, "kiosk-claimed").code
    profile = EnrolProfile.load(setup.dir.enrol)
    assert profile.settings.username == "claim" and profile.settings.tls

    # Staff typed it sloppily: lower case, no dashes, O for 0 — still the same code.
    typed = code.lower().replace("-", " ").replace("0", "o")
    result = CliRunner().invoke(cli, ["enroll", "--profile", str(setup.dir.enrol), "--code", typed,
                                      "--out", str(tmp_path / "kiosk"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["device"] == "kiosk-claimed"
    config = load_config(tmp_path / "kiosk" / "device.toml")
    assert (config.device_id, config.location, config.survey.languages) == ("kiosk-claimed", "exit", ("en", "sv"))
    assert (tmp_path / "kiosk" / "password").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "kiosk" / "client.key").stat().st_mode & 0o777 == 0o600

    # The fetched credentials work at once (the responder reloaded the broker before answering).
    password = (tmp_path / "kiosk" / "password").read_text().strip()
    assert password not in result.output
    c = connect_v5(setup.port, "kiosk-claimed", password)
    try:
        assert c.connect_rc and not c.connect_rc[0].is_failure
        assert c.publish(topics.ratings("store-1", "kiosk-claimed"), {"v": 1}).value in (0, 16)
    finally:
        c.close()

    with pytest.raises(ClaimRefused, match="already used"):
        claim(profile.settings, code, responder_key=profile.responder_key, timeout=10)
    again = CliRunner().invoke(cli, ["enroll", "--profile", str(setup.dir.enrol), "--code", code,
                                     "--out", str(tmp_path / "again")])
    assert again.exit_code == 1 and "already used" in again.output
    assert not (tmp_path / "again" / "device.toml").exists()


def test_expired_and_unknown_codes_are_refused(setup: Setup, responder: ClaimResponder) -> None:
    create_device(setup.inventory, DeviceSpec(site="store-1", location="exit", device_id="kiosk-late"))
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    past = Inventory(setup.inventory.path, clock=FakeClock(start=three_days_ago))  # staff made it 3 days ago
    try:
        code = create_claim(past, "kiosk-late", timedelta(hours=24)).code
    finally:
        past.close()
    profile = EnrolProfile.load(setup.dir.enrol)
    with pytest.raises(ClaimRefused, match="expired"):
        claim(profile.settings, code, responder_key=profile.responder_key, timeout=10)
    with pytest.raises(ClaimRefused, match="unknown"):
        claim(profile.settings, "ZZZZ-ZZZZ-ZZZZ", responder_key=profile.responder_key, timeout=10)
    assert setup.inventory.device("kiosk-late").state == "new"  # nothing was issued


def test_claim_without_a_responder_times_out(broker: Mosquitto) -> None:
    """A broker where nobody answers claims (the shared anonymous test broker), and one that is not there."""
    key = X25519PrivateKey.generate().public_key()
    with pytest.raises(ClaimTimeout, match="serve-claims"):
        claim(BrokerSettings.from_url(broker.url), "0000-0000-0000", responder_key=key, timeout=1.0)
    with pytest.raises(ClaimTimeout, match="could not reach"):
        claim(BrokerSettings.from_url(f"mqtt://127.0.0.1:{free_port()}", connect_timeout=0.5), "0000-0000-0000",
              responder_key=key, timeout=1.0)


def test_codes_are_normalized_and_checked() -> None:
    assert normalize_code("k7qf 9xrt m2pa") == "K7QF-9XRT-M2PA"
    assert normalize_code("IL0O-0000-0000") == "1100-0000-0000"
    with pytest.raises(InvalidInput, match="12 letters"):
        normalize_code("K7QF-9XRT")
    with pytest.raises(InvalidInput):
        normalize_code("K7QF-9XRT-M2P!")

