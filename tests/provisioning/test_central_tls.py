"""Central on the TLS listener that asks for client certificates: ``smileloop central --cert-file/--key-file``."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from provisioning.tls import CertificateAuthority
from tests.conftest import wait_for
from tests.loop.helpers import run_smileloop, smileloop_process
from tests.provisioning.conftest import Setup


def test_central_with_a_client_certificate_receives_a_provisioned_device(setup: Setup) -> None:
    ca = CertificateAuthority(setup.dir.ca_cert, setup.dir.ca_key)
    issued = ca.issue("central")
    cert, key = setup.root / "central-client.pem", setup.root / "central-client.key"
    cert.write_bytes(issued.cert_pem)
    key.write_bytes(issued.key_pem)
    key.chmod(0o600)
    db = setup.root / "central-tls.db"
    central = smileloop_process(
        "central", "--broker", f"mqtts://127.0.0.1:{setup.tls_port}", "--db", str(db), "--username", "central",
        "--password-file", str(setup.dir.account_password("central")), "--ca-file", str(setup.dir.ca_cert),
        "--cert-file", str(cert), "--key-file", str(key), "--client-id", "central-tls",
        log=setup.root / "central-tls.log")
    try:
        bundle = setup.new_device("kiosk-tls")
        config = bundle / "device.toml"
        assert "mqtts://" in config.read_text()
        assert run_smileloop("tap", "--config", str(config), "1").returncode == 0
        # central subscribes shortly after it starts; the agent re-sends until central's receipt comes
        proc = run_smileloop("sync", "--config", str(config), "--once", "--timeout", "45")
        assert proc.returncode == 0, proc.stderr[-2000:] + (setup.root / "central-tls.log").read_text()[-2000:]

        def stored() -> int:
            with sqlite3.connect(db) as conn:
                return int(conn.execute("SELECT count(*) FROM ratings WHERE device_id = 'kiosk-tls'").fetchone()[0])
        wait_for(lambda: stored() == 1, message="the rating at central")
    finally:
        central.terminate()
        central.wait(10)


def test_central_refuses_a_certificate_without_its_key() -> None:
    proc = subprocess.run([sys.executable, "-m", "smileloop", "central", "--cert-file", __file__],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--cert-file and --key-file together" in proc.stderr
