"""``smileloop provision serve-claims`` as a process of its own (its own broker: no other responder here)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from device.config import load_config
from provisioning.claims import create_claim
from provisioning.devices import create_device
from provisioning.inventory import DeviceSpec
from smileloop.cli import cli
from tests.conftest import wait_for
from tests.provisioning.conftest import Setup

pytestmark = pytest.mark.broker


def test_serve_claims_command_answers_a_kiosk(setup: Setup, tmp_path: Path) -> None:
    create_device(setup.inventory, DeviceSpec(site="store-1", location="entrance", device_id="kiosk-proc"))
    code = create_claim(setup.inventory, "kiosk-proc").code
    proc = subprocess.Popen([sys.executable, "-m", "smileloop", "provision", "--inventory", str(setup.inventory.path),
                             "serve-claims", "--duration", "30"], stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        wait_for(lambda: any("answering claim codes" in line for line in lines), 15, message="serve-claims to start")
        result = CliRunner().invoke(cli, ["enroll", "--profile", str(setup.dir.enrol), "--code", code,
                                          "--out", str(tmp_path / "k"), "--timeout", "15"])
        assert result.exit_code == 0, result.output
        assert "enrolled as kiosk-proc at store-1/entrance" in result.output
        assert load_config(tmp_path / "k" / "device.toml").location == "entrance"
    finally:
        proc.terminate()
        proc.wait(10)
        reader.join(5)
    log = "".join(lines)
    assert "answered 1, refused 0" in log and code not in log  # the code never reaches the log
