"""The CLI: every command documented with an example; bad input gives one line and exit 2."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from smileloop.cli import COMMANDS, cli, main
from tests.conftest import write_device_config


def command_names():
    return sorted(COMMANDS)


@pytest.mark.parametrize("name", command_names())
def test_every_command_has_help_with_an_example(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"'smileloop {name} --help' shows no example"


def test_tap_records_and_refuses_out_of_range(tmp_path, capsys):
    cfg = write_device_config(tmp_path, "mqtt://127.0.0.1:1")
    assert main(["tap", "--config", str(cfg), "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["value"] == 2 and out["scale"] == "smiley4"
    assert main(["tap", "--config", str(cfg), "9"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: 9 is outside scale smiley4 (1..4)"
    from device.store import DeviceStore
    assert len(DeviceStore(tmp_path / "device.db").all_ratings()) == 1


def test_malformed_config_is_one_line_naming_file_and_key_exit_2(tmp_path):
    cfg = tmp_path / "device.toml"
    cfg.write_text('[device]\nid = "k1"\nsite = "s1"\nlocation = "l"\n[survey]\nscale = "stars"\n')
    proc = subprocess.run([sys.executable, "-m", "smileloop", "tap", "--config", str(cfg), "1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"error: {cfg}: survey.scale: 'stars' is not one of smiley4, smiley5, nps, csat5"]


def test_simulate_records_a_mix(tmp_path, capsys):
    cfg = write_device_config(tmp_path, "mqtt://127.0.0.1:1")
    assert main(["simulate", "--config", str(cfg), "--taps", "200", "--seed", "3"]) == 0
    from device.store import DeviceStore
    rows = DeviceStore(tmp_path / "device.db").all_ratings()
    assert len(rows) == 200
    assert {r["value"] for r in rows} == {1, 2, 3, 4}


@pytest.mark.parametrize("name", command_names())
def test_every_command_is_documented(name):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    text = (root / "README.md").read_text() + "".join(p.read_text() for p in (root / "docs").glob("*.md"))
    assert f"smileloop {name}" in text, f"'smileloop {name}' appears in neither README.md nor docs/"
