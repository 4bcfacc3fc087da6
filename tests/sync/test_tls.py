"""mqtts:// with a CA made here: a client certificate, or a username and a password file; a wrong CA fails clearly."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from central.service import CentralService
from central.store import CentralStore
from device.config import load_config
from device.recorder import Recorder
from device.store import DeviceStore
from smileloop_core.mosquitto import Mosquitto, reserve_port
from smileloop_core.mqtt import BrokerSettings
from sync_agent.agent import SyncAgent
from sync_agent.errors import BrokerUnreachable
from tests.conftest import write_device_config
from tests.sync.helpers import issue, make_ca, user_line

pytestmark = pytest.mark.broker


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    d = tmp_path / "pki"
    ca, ca_key, ca_cert = make_ca(d)
    server_cert, server_key = issue(d, ca_key, ca_cert, "broker", server=True)
    client_cert, client_key = issue(d, ca_key, ca_cert, "kiosk-t", server=False)
    other_ca, _, _ = make_ca(d, "another CA")
    for p in d.iterdir():
        p.chmod(0o644)
    return {"ca": ca, "server_cert": server_cert, "server_key": server_key, "client_cert": client_cert,
            "client_key": client_key, "other_ca": other_ca}


def tls_broker(tmp_path: Path, pki: dict[str, Path], tls_port: int, listener: str) -> Mosquitto:
    """A plain listener for central and a TLS one for devices, each with its own settings."""
    config = (f"per_listener_settings true\nlog_dest stdout\n{user_line()}"
              "listener {port} 127.0.0.1\nallow_anonymous true\n"
              f"listener {tls_port} 127.0.0.1\ncafile {pki['ca']}\ncertfile {pki['server_cert']}\n"
              f"keyfile {pki['server_key']}\ntls_version tlsv1.2\n{listener}\n")
    return Mosquitto(tmp_path / "tls-broker", config=config)


def deliver_over_tls(tmp_path: Path, broker: Mosquitto, tls_port: int, **broker_section: str) -> None:
    store = CentralStore(tmp_path / "central.db")
    central = CentralService(store, BrokerSettings.from_url(broker.url, connect_timeout=2.0)).start()
    try:
        assert central.wait_ready(10)
        cfg_path = write_device_config(tmp_path / "dev", f"mqtts://127.0.0.1:{tls_port}",
                                       device={"id": "kiosk-t"}, broker=broker_section)
        cfg = load_config(cfg_path)
        recorder = Recorder(DeviceStore(cfg.storage.path), cfg)
        ids = {recorder.record(v).id for v in (1, 4, 3)}
        SyncAgent(cfg).drain(30)
        assert {r["id"] for r in store.query("SELECT id FROM ratings")} == ids
        assert {r["state"] for r in recorder.store.all_ratings()} == {2}
    finally:
        central.stop()
        store.close()


def test_client_certificate(tmp_path: Path, pki):
    port = (_reservation := reserve_port()).port  # held while the test runs
    with tls_broker(tmp_path, pki, port, "require_certificate true\nuse_identity_as_username true") as broker:
        deliver_over_tls(tmp_path, broker, port, ca_file=str(pki["ca"]), cert_file=str(pki["client_cert"]),
                         key_file=str(pki["client_key"]))


def test_username_and_password_file(tmp_path: Path, pki):
    port = (_reservation := reserve_port()).port  # held while the test runs
    passwd = tmp_path / "mosquitto.passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "kiosk-t", "s3cret pass"], check=True)
    passwd.chmod(0o644)
    pw_file = tmp_path / "dev" / "password"
    pw_file.parent.mkdir(parents=True, exist_ok=True)
    pw_file.write_text("s3cret pass\n")
    pw_file.chmod(0o600)
    with tls_broker(tmp_path, pki, port, f"allow_anonymous false\npassword_file {passwd}") as broker:
        deliver_over_tls(tmp_path, broker, port, ca_file=str(pki["ca"]), username="kiosk-t",
                         password_file=str(pw_file))


def test_wrong_ca_fails_with_a_clear_error_and_ratings_stay_queued(tmp_path: Path, pki):
    port = (_reservation := reserve_port()).port  # held while the test runs
    with tls_broker(tmp_path, pki, port, "allow_anonymous true"):
        cfg = load_config(write_device_config(tmp_path / "dev", f"mqtts://127.0.0.1:{port}",
                                              broker={"ca_file": str(pki["other_ca"])},
                                              sync={"reconnect_min": 0.1, "reconnect_max": 0.3}))
        recorder = Recorder(DeviceStore(cfg.storage.path), cfg)
        rating = recorder.record(1)
        with pytest.raises(BrokerUnreachable, match="certificate verify failed"):
            SyncAgent(cfg, settings=BrokerSettings.from_url(cfg.broker.url, ca_file=cfg.broker.ca_file,
                                                            connect_timeout=1.0)).drain(2)
        assert recorder.store.state_of(rating.id) == "queued"
