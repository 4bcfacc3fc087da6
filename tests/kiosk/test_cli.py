"""``smileloop kiosk``: the PIN hash command and the errors staff see, through the root CLI."""

from __future__ import annotations

import re

from click.testing import CliRunner

from kiosk_ui.cli import kiosk
from kiosk_ui.pin import verify_pin
from smileloop.cli import main


def test_hash_pin_prints_a_line_for_the_staff_table(capsys):
    assert main(["kiosk", "hash-pin", "--pin", "2468"]) == 0
    line = capsys.readouterr().out.strip()
    match = re.fullmatch(r'pin_hash = "(pbkdf2_sha256\$\d+\$[0-9a-f]{32}\$[0-9a-f]{64})"', line)
    assert match, line
    assert verify_pin("2468", match.group(1)) and not verify_pin("2469", match.group(1))


def test_hash_pin_prompts_hidden_with_confirmation():
    result = CliRunner().invoke(kiosk, ["hash-pin"], input="13579\n13579\n")
    assert result.exit_code == 0 and "13579" not in result.output.split("pin_hash")[1]
    assert verify_pin("13579", result.output.split('"')[1])


def test_a_bad_pin_is_one_line_and_exit_2(capsys):
    assert main(["kiosk", "hash-pin", "--pin", "12"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: a staff PIN must have 4 to 12 digits, got 2"


def test_kiosk_without_a_config_or_with_a_bad_one_exits_2_before_opening_a_window(tmp_path, capsys):
    assert main(["kiosk"]) == 2
    assert "--config is required" in capsys.readouterr().err
    bad = tmp_path / "device.toml"
    bad.write_text('[device]\nid = "k"\nsite = "s"\nlocation = "l"\n[survey]\nscale = "stars"\n')
    assert main(["kiosk", "--config", str(bad)]) == 2
    assert "survey.scale: 'stars' is not one of" in capsys.readouterr().err
    assert main(["kiosk", "--config", str(tmp_path / "missing.toml")]) == 2


def test_every_kiosk_command_has_an_example():
    for name, command in [("kiosk", kiosk), *kiosk.commands.items()]:
        assert "Example:" in (command.help or ""), name
