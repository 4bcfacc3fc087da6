"""Password hashes in Mosquitto's format, secret files, and the inventory's rules for claim codes."""

from __future__ import annotations

import shutil
import subprocess
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from provisioning.acl import render_acl
from provisioning.codes import new_code
from provisioning.credentials import mosquitto_hash, new_password, verify_mosquitto_hash, write_secret
from provisioning.errors import ClaimRefused, InvalidInput
from provisioning.inventory import DeviceSpec, Inventory
from smileloop_core.clock import FakeClock


def test_hash_has_mosquittos_format_and_verifies() -> None:
    password = new_password()
    hashed = mosquitto_hash(password)
    _, seven, iterations, salt, digest = hashed.split("$")
    assert (seven, iterations, len(salt), len(digest)) == ("7", "101", 16, 88)  # 12-byte salt, 64-byte hash
    assert verify_mosquitto_hash(password, hashed)
    assert not verify_mosquitto_hash(password + "x", hashed)
    with pytest.raises(InvalidInput):
        verify_mosquitto_hash(password, "$1$nope")


def test_mosquitto_passwd_and_we_agree(tmp_path: Path) -> None:
    """A file written by mosquitto_passwd verifies with our code: the same algorithm and encoding."""
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd is not installed (the broker tests still prove the format)")
    path = tmp_path / "pw"
    subprocess.run([tool, "-c", "-b", str(path), "kiosk-1", "s3cret pass"], check=True, capture_output=True)
    user, hashed = path.read_text().strip().split(":", 1)
    assert user == "kiosk-1" and verify_mosquitto_hash("s3cret pass", hashed)
    assert not verify_mosquitto_hash("s3cret", hashed)


def test_secret_files_are_0600_and_written_whole(tmp_path: Path) -> None:
    path = write_secret(tmp_path / "sub" / "password", "one\n")
    write_secret(path, "two\n")
    assert path.read_text() == "two\n" and path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["password"]  # no temporary file left behind


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    inv = Inventory(tmp_path / "inv.db", clock=FakeClock())
    inv.add_site("s1")
    inv.add_location("s1", "door")
    inv.create_device(DeviceSpec(site="s1", location="door", device_id="k1"))
    return inv


def test_claim_code_is_used_once_even_when_two_kiosks_race(inventory: Inventory) -> None:
    code = new_code()
    inventory.add_claim(code, "k1", timedelta(hours=1))
    winners: list[str] = []
    losers: list[str] = []
    clones = [Inventory(inventory.path, clock=inventory.clock) for _ in range(4)]

    def go(inv: Inventory) -> None:
        try:
            winners.append(inv.redeem_claim(code))
        except ClaimRefused as e:
            losers.append(str(e))

    threads = [threading.Thread(target=go, args=(inv,)) for inv in clones]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert winners == ["k1"] and len(losers) == 3 and all("already used" in m for m in losers)


def test_claim_code_expires_on_the_injected_clock(inventory: Inventory) -> None:
    code = new_code()
    inventory.add_claim(code, "k1", timedelta(hours=1))
    assert isinstance(inventory.clock, FakeClock)
    inventory.clock.advance(3601)
    with pytest.raises(ClaimRefused, match="expired"):
        inventory.redeem_claim(code)


def test_revoking_spends_open_claims_and_drops_the_acl_block(inventory: Inventory) -> None:
    code = new_code()
    inventory.add_claim(code, "k1", timedelta(hours=1))
    inventory.set_credentials("k1", mosquitto_hash("pw"), None)
    assert "user k1\n" in render_acl({}, inventory.devices())
    inventory.revoke("k1")
    with pytest.raises(ClaimRefused):
        inventory.redeem_claim(code)
    assert "k1" not in render_acl({}, inventory.devices()) and inventory.device_hashes() == {}
    with pytest.raises(InvalidInput, match="revoked"):
        inventory.set_credentials("k1", mosquitto_hash("pw"), None)


def test_acl_names_exactly_the_devices_own_topics(inventory: Inventory) -> None:
    inventory.set_credentials("k1", mosquitto_hash("pw"), None)
    block = render_acl({}, inventory.devices()).split("user k1\n")[1].strip().splitlines()
    assert block == ["topic write smileloop/v1/s1/k1/ratings", "topic write smileloop/v1/s1/k1/status",
                     "topic read smileloop/v1/s1/k1/ack", "topic read smileloop/v1/s1/k1/config",
                     "topic read smileloop/v1/s1/k1/erase", "topic read smileloop/v1/s1/outcomes/door"]


def test_a_received_bundle_cannot_write_outside_its_folder(tmp_path: Path) -> None:
    from provisioning.bundle import bundle_from_files, write_bundle

    toml = b'[device]\nid = "k1"\nsite = "s1"\nlocation = "door"\n'
    bundle = bundle_from_files({"device.toml": toml, "../../etc/cron.d/x": b"boom"})
    with pytest.raises(InvalidInput, match="should not"):
        write_bundle(bundle, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (tmp_path.parent / "etc").exists()


def test_concurrent_staff_commands_leave_every_device_in_the_password_file(tmp_path: Path) -> None:
    """Staff commands and the claim responder are separate processes on one inventory: no change is lost."""
    from provisioning.broker import write_broker_config
    from provisioning.bundle import issue_bundle

    inv = Inventory(tmp_path / "inv.db")
    write_broker_config(inv, tmp_path / "broker", 1883)
    inv.add_site("s1")
    inv.add_location("s1", "door")
    ids = [f"k{n}" for n in range(8)]
    for device_id in ids:
        inv.create_device(DeviceSpec(site="s1", location="door", device_id=device_id))
    errors: list[BaseException] = []

    def issue(device_id: str) -> None:
        own = Inventory(inv.path)  # its own connection, as another process would have
        try:
            issue_bundle(own, device_id)
        except BaseException as e:
            errors.append(e)
        finally:
            own.close()

    threads = [threading.Thread(target=issue, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    users = {line.split(":")[0] for line in (tmp_path / "broker" / "passwd").read_text().splitlines()}
    assert set(ids) <= users


def test_broker_files_wait_for_the_writer_holding_the_lock(tmp_path: Path) -> None:
    """While one writer holds the broker files' lock, another commits its change but waits to write the files."""
    import fcntl

    from provisioning.broker import write_broker_config
    from provisioning.bundle import issue_bundle
    from tests.conftest import wait_for

    inv = Inventory(tmp_path / "inv.db")
    write_broker_config(inv, tmp_path / "broker", 1883)
    inv.add_site("s1")
    inv.add_location("s1", "door")
    inv.create_device(DeviceSpec(site="s1", location="door", device_id="k1"))
    passwd = tmp_path / "broker" / "passwd"
    done = threading.Event()
    with (tmp_path / "broker" / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        worker = threading.Thread(target=lambda: (issue_bundle(Inventory(inv.path), "k1"), done.set()))
        worker.start()
        wait_for(lambda: inv.device("k1").state == "active", 10, message="the change to be committed")
        assert not done.wait(0.3) and "k1:" not in passwd.read_text()
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert done.wait(10) and "k1:" in passwd.read_text()
    worker.join(10)
