"""``smileloop sync``: --once delivers and exits 0, --status shows what the agent last reported."""

from __future__ import annotations

import json

from smileloop.cli import main
from tests.conftest import wait_for, write_device_config


def test_once_then_status(broker, central, device_config, capsys):
    cfg = device_config("kiosk-cli")
    assert main(["tap", "--config", str(cfg), "1"]) == 0
    assert main(["tap", "--config", str(cfg), "4"]) == 0
    assert main(["sync", "--config", str(cfg), "--once", "--timeout", "30"]) == 0
    assert "delivered: 2 receipted" in capsys.readouterr().out
    wait_for(lambda: central.store.count("ratings") == 2, message="both at central")
    assert main(["sync", "--config", str(cfg), "--status"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["backlog"]["undelivered"] == 0
    assert shown["space"]["free_mb"] > 0
    assert shown["agent"]["delivered"] == 2 and shown["agent"]["connected"] is False, "saved as it stopped"


def test_unreachable_broker_exits_1_and_keeps_the_taps(tmp_path, capsys):
    cfg = write_device_config(tmp_path, "mqtt://127.0.0.1:1", sync={"reconnect_max": 0.2})
    assert main(["tap", "--config", str(cfg), "2"]) == 0
    assert main(["sync", "--config", str(cfg), "--once", "--timeout", "1"]) == 1
    assert "1 ratings stay queued" in capsys.readouterr().err
    assert main(["sync", "--config", str(cfg), "--status"]) == 0
    assert json.loads(capsys.readouterr().out)["backlog"]["queued"] == 1
