"""The staff commands end to end through the root CLI, on a broker started from the config they wrote."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from device.config import load_config
from provisioning.cli import provision
from smileloop.cli import cli
from smileloop_core.mosquitto import reserve_port
from tests.conftest import wait_for
from tests.provisioning.conftest import BrokerProcess, connect_v5


def run(inv: Path, *args: str, ok: bool = True) -> click.testing.Result:
    result = CliRunner().invoke(cli, ["provision", "--inventory", str(inv), *args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def staff(tmp_path: Path) -> tuple[Path, Path, int]:
    """An inventory with a plain-MQTT broker config, one site and two locations."""
    inv, port = tmp_path / "inventory.db", (_reservation := reserve_port()).port
    run(inv, "broker-config", "--out", str(tmp_path / "broker"), "--port", str(port),
        *(["--run-as", "root"] if os.geteuid() == 0 else []))
    run(inv, "site", "add", "store-9", "--timezone", "Europe/Stockholm")
    run(inv, "location", "add", "store-9", "exit")
    run(inv, "location", "add", "store-9", "till")
    return inv, tmp_path, port


@pytest.mark.broker
def test_one_command_per_device_then_revoke(staff: tuple[Path, Path, int]) -> None:
    inv, tmp, port = staff
    conf = tmp / "broker" / "mosquitto.conf"
    assert f"listener {port} 127.0.0.1" in conf.read_text() and "allow_anonymous false" in conf.read_text()
    broker = BrokerProcess(conf, [port]).start()
    try:
        result = run(inv, "device", "new", "--site", "store-9", "--location", "exit", "--out", str(tmp / "sd"),
                     "--scale", "nps", "--question", "en=Would you recommend us?", "--question",
                     "sv=Skulle du rekommendera oss?", "--languages", "en,sv", "--hours", "mon-fri=08:00-20:00",
                     "--hours", "sat=10:00-14:00,15:00-18:00", "--hours", "sun=closed", "--json")
        data = json.loads(result.output)
        device_id = data["device"]["id"]
        assert device_id == "store-9-exit-1" and "password" not in data
        password = (tmp / "sd" / "password").read_text().strip()
        assert password not in result.output
        for name in ("password",):
            assert (tmp / "sd" / name).stat().st_mode & 0o777 == 0o600
        config = load_config(tmp / "sd" / "device.toml")
        assert (config.survey.scale, config.survey.languages, config.hours.timezone) == (
            "nps", ("en", "sv"), "Europe/Stockholm")
        assert config.hours.weekly["sat"] == (("10:00", "14:00"), ("15:00", "18:00"))
        assert config.hours.weekly["sun"] == () and config.broker.url == f"mqtt://localhost:{port}"

        c = connect_v5(port, device_id, password)
        assert c.connect_rc and not c.connect_rc[0].is_failure
        c.close()

        listed = json.loads(run(inv, "device", "list", "--json").output)
        assert [(d["id"], d["state"]) for d in listed] == [(device_id, "active")]

        revoked = run(inv, "device", "revoke", device_id)
        assert "reloaded" in revoked.output

        def refused() -> bool:
            again = connect_v5(port, device_id, password)
            again.close()
            return bool(again.connect_rc and again.connect_rc[0].is_failure)
        wait_for(refused, 5, interval=0.1, message="the revoked device to be refused")
        assert json.loads(run(inv, "device", "list", "--json").output)[0]["state"] == "revoked"
    finally:
        broker.stop()


def test_show_secret_prints_the_password_only_when_asked(staff: tuple[Path, Path, int]) -> None:
    inv, tmp, _ = staff
    plain = run(inv, "device", "new", "--site", "store-9", "--location", "exit", "--id", "k1", "--out", str(tmp / "k1"))
    assert (tmp / "k1" / "password").read_text().strip() not in plain.output
    shown = run(inv, "device", "rotate", "k1", "--out", str(tmp / "k1"), "--show-secret", "--json")
    assert json.loads(shown.output)["password"] == (tmp / "k1" / "password").read_text().strip()


def test_mistakes_give_one_clear_line_and_exit_2(staff: tuple[Path, Path, int]) -> None:
    inv, tmp, _ = staff
    cases = [
        (["device", "new", "--site", "nowhere", "--location", "exit", "--out", str(tmp / "x")], "site 'nowhere'"),
        (["device", "new", "--site", "store-9", "--location", "roof", "--out", str(tmp / "x")], "location 'roof'"),
        (["device", "new", "--site", "store-9", "--location", "exit", "--hours", "mon=20:00-08:00",
          "--out", str(tmp / "x")], "hours.mon"),
        (["device", "new", "--site", "store-9", "--location", "exit", "--scale", "stars", "--out", str(tmp / "x")],
         "scale 'stars'"),
        (["device", "new", "--site", "store-9", "--location", "exit", "--id", "bad/id", "--out", str(tmp / "x")],
         "device id 'bad/id'"),
        (["device", "new", "--site", "store-9", "--location", "exit", "--id", "central", "--out", str(tmp / "x")],
         "reserved"),
        (["device", "new", "--site", "store-9", "--location", "exit"], "--out DIR, --board PORT or --claim"),
        (["device", "revoke", "ghost"], "device 'ghost'"),
        (["site", "add", "store-10", "--timezone", "Mars/Olympus"], "Mars/Olympus"),
        (["site", "add", "store-9"], "already exists"),
    ]
    for args, expected in cases:
        result = run(inv, *args, ok=False)
        assert result.exit_code == 2, (args, result.output)
        assert expected in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert not (tmp / "x").exists()  # nothing was written for a refused device
    assert json.loads(run(inv, "device", "list", "--json").output) == []


def test_device_before_broker_config_is_a_clear_error(tmp_path: Path) -> None:
    inv = tmp_path / "inv.db"
    run(inv, "site", "add", "s")
    run(inv, "location", "add", "s", "l")
    result = run(inv, "device", "new", "--site", "s", "--location", "l", "--out", str(tmp_path / "b"), ok=False)
    assert result.exit_code == 1 and "broker-config" in result.output


def test_bulk_csv_checks_every_row_first_then_shows_progress(staff: tuple[Path, Path, int]) -> None:
    inv, tmp, _ = staff
    rows = [{"site": "store-9", "location": "exit", "id": f"k{n}", "scale": "smiley5", "languages": "en;sv",
             "question_en": "How was it?", "question_sv": "Hur var det?", "hours": "mon-fri=08:00-18:00;sun=closed",
             "timezone": ""} for n in range(12)]
    rows.append({"site": "store-new", "location": "door", "id": "", "scale": "", "languages": "", "question_en": "",
                 "question_sv": "", "hours": "", "timezone": "Europe/Oslo"})
    path = tmp / "devices.csv"

    def write(rs: list[dict[str, str]]) -> None:
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rs[0]))
            w.writeheader()
            w.writerows(rs)

    write([*rows[:5], {**rows[5], "hours": "mon=25:00-26:00"}, *rows[6:]])
    bad = run(inv, "device", "import", str(path), "--out-root", str(tmp / "bundles"), "--create-missing", ok=False)
    assert bad.exit_code == 2 and "line 7" in bad.output and "hours.mon" in bad.output
    assert json.loads(run(inv, "device", "list", "--json").output) == [] and not (tmp / "bundles").exists()

    write(rows)
    without = run(inv, "device", "import", str(path), "--out-root", str(tmp / "bundles"), ok=False)
    assert without.exit_code == 2 and "store-new" in without.output and "--create-missing" in without.output

    good = run(inv, "device", "import", str(path), "--out-root", str(tmp / "bundles"), "--create-missing", "--json")
    assert "provisioning" in good.stderr  # the progress bar goes to stderr, the JSON to stdout
    assert json.loads(good.stdout)["created"] == 13
    for n in range(12):
        cfg = load_config(tmp / "bundles" / f"k{n}" / "device.toml")
        assert cfg.survey.scale == "smiley5" and cfg.survey.question == {"en": "How was it?", "sv": "Hur var det?"}
    assert load_config(tmp / "bundles" / "store-new-door-1" / "device.toml").hours.timezone == "Europe/Oslo"
    passwd = (tmp / "broker" / "passwd").read_text()
    assert all(f"k{n}:$7$" in passwd for n in range(12))

    claims = [{**r, "id": f"c{n}"} for n, r in enumerate(rows[:3])]
    write(claims)
    made = run(inv, "device", "import", str(path), "--claims-csv", str(tmp / "codes.csv"))
    assert "3 devices created" in made.stdout
    assert (tmp / "codes.csv").stat().st_mode & 0o777 == 0o600
    codes = list(csv.DictReader((tmp / "codes.csv").open()))
    assert [c["device"] for c in codes] == ["c0", "c1", "c2"] and all(len(c["claim_code"]) == 14 for c in codes)


def test_claim_code_with_qr(staff: tuple[Path, Path, int]) -> None:
    inv, tmp, _ = staff
    result = run(inv, "device", "new", "--site", "store-9", "--location", "till", "--claim", "--ttl", "2")
    assert "claim code for store-9-till-1:" in result.output and "█" in result.output  # the QR, drawn in text
    svg = run(inv, "claim", "new", "store-9-till-1", "--qr", str(tmp / "label.svg"), "--json")
    assert json.loads(svg.output)["qr_file"] == str(tmp / "label.svg")
    assert (tmp / "label.svg").read_text().lstrip().startswith("<?xml")
    bad = run(inv, "claim", "new", "store-9-till-1", "--qr", str(tmp / "label.gif"), ok=False)
    assert bad.exit_code == 2 and ".svg or .png" in bad.output


def test_board_copy_runs_mpremote(staff: tuple[Path, Path, int]) -> None:
    """No board here: the dry run shows the exact mpremote command; a failed real copy changes nothing."""
    inv, tmp, _ = staff
    dry = run(inv, "device", "new", "--site", "store-9", "--location", "exit", "--id", "panel-1", "--board",
              "/dev/ttyACM9", "--dry-run", "--json")
    cmd = json.loads(dry.output)["board_command"]
    assert Path(cmd[0]).name == "mpremote" and cmd[1:4] == ["connect", "/dev/ttyACM9", "exec"]
    assert 'os.mkdir("/smileloop")' in cmd[4] and cmd[5:8] == ["+", "fs", "cp"] and cmd[-1] == ":/smileloop/"
    assert sorted(Path(p).name for p in cmd[8:-1]) == ["device.json", "device.toml", "password"]
    assert json.loads(run(inv, "device", "list", "--json").output)[0]["state"] == "new"  # a dry run changes nothing

    run(inv, "device", "rotate", "panel-1", "--out", str(tmp / "panel"))
    passwd = (tmp / "broker" / "passwd").read_text()
    real = run(inv, "device", "rotate", "panel-1", "--board", str(tmp / "no-such-port"), ok=False)
    assert real.exit_code == 1 and "mpremote connect" in real.output and "not installed" not in real.output
    assert (tmp / "broker" / "passwd").read_text() == passwd  # the board never got new ones: the old ones stay


def test_every_command_has_an_example() -> None:
    def walk(cmd: click.Command, path: str) -> list[tuple[str, str]]:
        found = [(path, cmd.help or "")]
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                found += walk(sub, f"{path} {name}")
        return found

    from provisioning.cli import enroll

    for path, text in walk(provision, "provision") + walk(enroll, "enroll"):
        assert "Example" in text, f"'smileloop {path}' has no Example in its help"


@pytest.mark.broker
def test_account_rotation_retires_the_old_central_password(staff: tuple[Path, Path, int]) -> None:
    inv, tmp, port = staff
    assert (inv.stat().st_mode & 0o777) == 0o600  # the inventory holds hashes: staff eyes only
    pw_file = tmp / "broker" / "accounts" / "central.password"
    old = pw_file.read_text().strip()
    broker = BrokerProcess(tmp / "broker" / "mosquitto.conf", [port]).start()
    try:
        out = json.loads(run(inv, "account", "rotate", "central", "--json").output)
        assert out["password_file"] == str(pw_file) and old not in json.dumps(out)
        new = pw_file.read_text().strip()
        assert new != old and pw_file.stat().st_mode & 0o777 == 0o600

        def old_refused() -> bool:
            c = connect_v5(port, "central", old)
            c.close()
            return bool(c.connect_rc and c.connect_rc[0].is_failure)
        wait_for(old_refused, 5, interval=0.1, message="the old central password to be refused")
        c = connect_v5(port, "central", new)
        c.close()
        assert c.connect_rc and not c.connect_rc[0].is_failure
    finally:
        broker.stop()


def test_tls_setup_keeps_the_plain_listener_on_loopback(tmp_path: Path) -> None:
    inv = tmp_path / "inv.db"
    run(inv, "broker-config", "--out", str(tmp_path / "b"), "--port", "1883", "--tls-port", "8883", "--bind", "0.0.0.0",
        "--host", "broker.example.com", "--run-as", "root")
    conf = (tmp_path / "b" / "mosquitto.conf").read_text()
    assert "listener 1883 127.0.0.1" in conf and "listener 8883 0.0.0.0" in conf
    assert "require_certificate true" in conf and "allow_anonymous false" in conf
    from provisioning.tls import x509

    cert = x509.load_pem_x509_certificate((tmp_path / "b" / "server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == ["broker.example.com"]
    profile = (tmp_path / "b" / "enrol" / "enrol.toml").read_text()
    assert 'url = "mqtts://broker.example.com:8883"' in profile and 'username = "claim"' in profile


def test_the_staff_guide_uses_only_real_commands_and_options() -> None:
    """Every ``smileloop provision …`` / ``smileloop enroll …`` line in docs/PROVISIONING.md names a real command
    and only options it has."""
    import re
    import shlex

    from provisioning.cli import enroll

    text = (Path(__file__).parents[2] / "docs" / "PROVISIONING.md").read_text()
    lines = re.findall(r"smileloop (?:provision|enroll)[^`\n|\\']*(?:\\\n[^`\n|\\']*)*", text)
    assert len(lines) > 15
    for line in lines:
        words = shlex.split(line.replace("\\\n", " ").split("#")[0])[1:]
        cmd: click.Command = enroll if words[0] == "enroll" else provision
        words = words[1:]
        while isinstance(cmd, click.Group) and words and words[0] in cmd.commands:
            cmd, words = cmd.commands[words[0]], words[1:]
        known = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)} | {"--inventory"}
        for word in words:
            if word.startswith("--"):
                assert word.split("=")[0] in known, f"{line!r}: {cmd.name} has no option {word}"


def test_replace_swaps_in_a_new_identity_with_the_same_settings(staff: tuple[Path, Path, int]) -> None:
    inv, tmp, _ = staff
    run(inv, "device", "new", "--site", "store-9", "--location", "till", "--scale", "csat5", "--languages", "en,sv",
        "--question", "en=How did we do?", "--hours", "sun=closed", "--out", str(tmp / "old"))
    out = json.loads(run(inv, "device", "replace", "store-9-till-1", "--out", str(tmp / "new"), "--json").output)
    assert out["replaced"] == "store-9-till-1" and out["device"]["id"] == "store-9-till-2"
    old, new = load_config(tmp / "old" / "device.toml"), load_config(tmp / "new" / "device.toml")
    assert (new.location, new.survey, new.hours) == (old.location, old.survey, old.hours)
    states = {d["id"]: d["state"] for d in json.loads(run(inv, "device", "list", "--json").output)}
    assert states == {"store-9-till-1": "revoked", "store-9-till-2": "active"}
    passwd = (tmp / "broker" / "passwd").read_text()
    assert "store-9-till-2:" in passwd and "store-9-till-1:" not in passwd
    again = run(inv, "device", "replace", "store-9-till-1", "--claim", ok=False)
    assert again.exit_code == 2 and "already revoked" in again.output


def test_a_command_that_reads_the_inventory_does_not_create_one(tmp_path):
    missing = tmp_path / "no" / "inventory.db"
    result = CliRunner().invoke(cli, ["provision", "--inventory", str(missing), "device", "list"])
    assert result.exit_code == 2 and f"no inventory at {missing}" in result.output
    assert not (tmp_path / "no").exists()
    result = CliRunner().invoke(cli, ["provision", "--inventory", str(missing), "site", "add", "store-1"])
    assert result.exit_code == 0 and missing.is_file()
