"""``smileloop provision device new --board PORT`` puts the Wi-Fi panel's firmware, ``device.json`` and the
credentials on a MicroPython board with mpremote and reads them back; ``--dry-run`` prints the commands.

No board here: mpremote is replaced by tests/provisioning/fake_mpremote.py, a folder standing in for the flash.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import provisioning.bundle as bundle
from tests.provisioning.test_cli import run, staff  # noqa: F401  (the fixture)

FAKE = Path(__file__).with_name("fake_mpremote.py")
FIRMWARE = Path(bundle.__file__).resolve().parents[1] / "hardware" / "firmware_wifi"


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    flash = tmp_path / "board" / "flash"
    flash.mkdir(parents=True)
    wrapper = tmp_path / "board" / "mpremote"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {FAKE} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setattr(bundle, "mpremote_program", lambda: str(wrapper))
    monkeypatch.setenv("FAKE_BOARD", str(flash))
    return flash


def test_dry_run_prints_copy_firmware_and_read_back(staff: tuple[Path, Path, int], board: Path) -> None:  # noqa: F811
    inv, _, _ = staff
    out = run(inv, "device", "new", "--site", "store-9", "--location", "exit", "--id", "panel-7", "--board",
              "/dev/ttyACM0", "--dry-run").output
    lines = [line.strip() for line in out.splitlines() if "mpremote" in line and "connect" in line]
    assert len(lines) == 3, out
    assert "fs cp" in lines[0] and lines[0].endswith(":/smileloop/")
    assert "main.py" in lines[1] and "uplink.py" in lines[1] and lines[1].endswith(" :/")
    assert "fs sha256sum :/smileloop/" in lines[2] and ":/smileloop/device.json" in lines[2] and ":/main.py" in lines[2]
    assert not any(board.iterdir()), "a dry run touches no board"
    assert json.loads(run(inv, "device", "list", "--json").output)[0]["state"] == "new"


def test_board_gets_firmware_config_and_credentials_verified(staff: tuple[Path, Path, int], board: Path) -> None:  # noqa: F811
    inv, tmp, _ = staff
    result = run(inv, "device", "new", "--site", "store-9", "--location", "exit", "--id", "panel-7", "--board",
                 "/dev/ttyACM0", "--json")
    data = json.loads(result.output)
    assert data["board_copied"] is True and len(data["board_commands"]) == 3
    assert sorted(p.name for p in (board / "smileloop").iterdir()) == ["device.json", "device.toml", "password"]
    for f in FIRMWARE.glob("*.py"):
        assert (board / f.name).read_bytes() == f.read_bytes()
    device = json.loads((board / "smileloop" / "device.json").read_text())
    assert device["device"] == {"id": "panel-7", "site": "store-9", "location": "exit"}
    assert device["broker"]["username"] == "panel-7" and device["broker"]["password_file"] == "password"
    password = (board / "smileloop" / "password").read_text().strip()
    assert "panel-7:" in (tmp / "broker" / "passwd").read_text() and len(password) >= 20
    # the firmware reads what provisioning wrote
    sys.path.insert(0, str(FIRMWARE))
    try:
        import config as firmware_config  # the firmware's own module

        settings = firmware_config.load(str(board / "smileloop"))
    finally:
        sys.path.remove(str(FIRMWARE))
        sys.modules.pop("config", None)
    assert settings["device"] == "panel-7" and settings["password"] == password and settings["port"] > 0


def test_a_copy_that_does_not_read_back_keeps_the_old_credentials(staff: tuple[Path, Path, int], board: Path,  # noqa: F811
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    inv, tmp, _ = staff
    run(inv, "device", "new", "--site", "store-9", "--location", "exit", "--id", "panel-7", "--out", str(tmp / "b"))
    passwd = (tmp / "broker" / "passwd").read_text()
    monkeypatch.setenv("FAKE_BOARD_GARBLE", "journal.py")
    bad = run(inv, "device", "rotate", "panel-7", "--board", "/dev/ttyACM0", ok=False)
    assert bad.exit_code == 1 and "does not hold what was copied: /journal.py" in bad.output
    assert (tmp / "broker" / "passwd").read_text() == passwd, "the broker still takes the old password"
    monkeypatch.delenv("FAKE_BOARD_GARBLE")
    monkeypatch.setenv("FAKE_BOARD_ABSENT", "1")
    gone = run(inv, "device", "rotate", "panel-7", "--board", "/dev/ttyACM0", ok=False)
    assert gone.exit_code == 1 and "failed to access" in gone.output
    assert (tmp / "broker" / "passwd").read_text() == passwd
