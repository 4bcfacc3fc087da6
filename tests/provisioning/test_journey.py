"""The staff journey on real parts, with commands only (no file edited by hand): provision a site with opening
hours and contacts, a location and a kiosk by claim code; the kiosk enrols; its first unhappy tap reaches the
location's contact through apprise, and the SLA clock runs on the hours given at provisioning."""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from central import CentralService, CentralStore, sla
from central.rulebook import RuleBook
from device import DeviceStore, Recorder, load_config
from provisioning.broker import BrokerDir
from provisioning.claims import ClaimResponder
from provisioning.cli import _staff_settings
from provisioning.inventory import Inventory
from smileloop.cli import cli
from smileloop_core.hours import WEEKDAYS
from smileloop_core.mosquitto import reserve_port
from smileloop_core.mqtt import BrokerSettings
from smileloop_core.pin import verify_pin
from sync_agent import SyncAgent
from tests.central.conftest import Receiver
from tests.conftest import wait_for
from tests.provisioning.conftest import BrokerProcess

pytestmark = pytest.mark.broker
TZ = "Europe/Stockholm"


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, f"{' '.join(args)}\n{result.output}"
    return result.output


def test_provision_enrol_and_the_first_unhappy_tap_reaches_the_site(tmp_path: Path) -> None:
    inv, central_db, broker_dir = tmp_path / "inventory.db", tmp_path / "central.db", tmp_path / "broker"
    staff = ["provision", "--inventory", str(inv), "--central-db", str(central_db), "--by", "anna"]
    # Closed today and tomorrow (site time), open all day otherwise: whatever day the suite runs, the SLA clock
    # must stand still for two days and then run.
    today = datetime.now(ZoneInfo(TZ))
    closed = {WEEKDAYS[today.weekday()], WEEKDAYS[(today.weekday() + 1) % 7]}
    hours = [f"--hours={d}=closed" if d in closed else f"--hours={d}=00:00-24:00" for d in WEEKDAYS]
    receiver = Receiver()
    with reserve_port() as plain, reserve_port() as tls:
        run(*staff, "broker-config", "--out", str(broker_dir), "--port", str(plain.port), "--tls-port",
            str(tls.port), *(["--run-as", "root"] if os.geteuid() == 0 else []))
        run(*staff, "site", "add", "store-7", "--timezone", TZ, "--language", "sv", *hours)
        run(*staff, "location", "add", "store-7", "exit")
        run("org", "contact", "add", "store-7/exit", "--name", "exit-lead", "--url", receiver.url("lead"),
            "--db", str(central_db), "--by", "anna")
        run("org", "contact", "add", "store-7", "--name", "site-manager", "--url", receiver.url("manager"),
            "--db", str(central_db), "--by", "anna")
        (tmp_path / "pin").write_text("482913\n")
        out = run(*staff, "device", "new", "--site", "store-7", "--location", "exit", "--id", "kiosk-7",
                  "--claim", "--hours", "mon-sun=00:00-24:00", "--pin-file", str(tmp_path / "pin"), "--json")
        code = json.loads(out)["claim_code"]
        broker = BrokerProcess(broker_dir / "mosquitto.conf", [plain.port, tls.port]).start()
    inventory = Inventory(inv)
    store = CentralStore(central_db)
    responder = ClaimResponder(inventory, _staff_settings(inventory, None)).start()
    d = BrokerDir(broker_dir)
    central = CentralService(store, BrokerSettings.from_url(f"mqtt://127.0.0.1:{plain.port}", username="central",
                                                            connect_timeout=3.0).with_password_file(
        d.account_password("central")), tick_interval=3600)
    central.start()
    stop = threading.Event()
    try:
        assert responder.wait_ready(10) and central.wait_ready(10)
        run("enroll", "--profile", str(d.enrol), "--code", code, "--out", str(tmp_path / "kiosk"), "--timeout", "20")
        config = load_config(tmp_path / "kiosk" / "device.toml")
        assert config.staff.pin_hash and verify_pin("482913", config.staff.pin_hash)  # staff mode on from boot one
        assert "482913" not in (tmp_path / "kiosk" / "device.toml").read_text()
        rating = Recorder(DeviceStore(config.storage.path), config).record(1, reason="waiting_time")
        agent = SyncAgent(config)
        threading.Thread(target=agent.run, args=(stop,), daemon=True).start()

        assert store.document("org")[0]["lifecycle"]["store-7/kiosk-7"] in ("provisioned", "active")
        [request] = wait_for(lambda: receiver.requests, 30, message="the exit lead's phone")
        # its first status online moved it along its lifecycle, as central's own audited change
        wait_for(lambda: store.document("org")[0]["lifecycle"]["store-7/kiosk-7"] == "active", 15,
                 message="the kiosk active in the organisation")
        assert ("central", "device.active") in {(e["actor"], e["action"]) for e in store.org_audit_entries()}
        assert request["path"] == "/lead"
        [alert] = store.alerts(kind="negative_rating")
        assert (alert["site"], alert["location"], alert["rating_id"]) == ("store-7", "exit", rating.id)

        # Central reads the hours given at provisioning: its SLA clock stands still while the site is closed.
        org, book = central.org(), RuleBook()
        assert org.hours("store-7").timezone == TZ
        opened = datetime.fromisoformat(alert["opened_at"].replace("Z", "+00:00"))
        assert sla.overdue(store, org, book, opened + timedelta(hours=20)) == []  # 20 closed hours: no time passed
        after_closing = (today + timedelta(days=2)).replace(hour=0, minute=20, second=0, microsecond=0)
        [(late, waited)] = sla.overdue(store, org, book, after_closing)
        assert late["id"] == alert["id"] and 15 * 60 <= waited <= 21 * 60
        assert [e["action"] for e in store.org_audit_entries()][::-1][:3] == ["site.set", "location.add",
                                                                               "contact.set"]
    finally:
        stop.set()
        central.stop()
        responder.stop()
        broker.stop()
        receiver.close()
        store.close()
        inventory.close()
