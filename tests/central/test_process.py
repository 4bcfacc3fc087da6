"""The way a user runs it: `smileloop central --org org.toml` as a process, a manager resolving from the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest

from smileloop.cli import main
from smileloop_core import topics
from smileloop_core.clock import utc_iso
from tests.central.test_service import Peer, message
from tests.conftest import wait_for

pytestmark = pytest.mark.broker


def test_central_process_routes_to_the_location_and_resolve_reaches_the_kiosks(broker, tmp_path, receiver, capsys):
    org = tmp_path / "org.toml"
    org.write_text(f"""
[sites.store-1]
timezone = "Europe/Stockholm"
[sites.store-1.locations.exit]
devices = ["kiosk-1"]
[[sites.store-1.locations.exit.contacts]]
name = "exit-lead"
urls = ["{receiver.url('exit-lead')}"]
""")
    db = tmp_path / "central.db"
    log = (tmp_path / "central.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "smileloop", "central", "--broker", broker.url, "--db", str(db),
                             "--org", str(org)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    peer = Peer(broker.url)
    try:
        r = {"id": str(uuid.uuid4()), "seq": 1, "ts": utc_iso(datetime.now(UTC)), "scale": "smiley4", "value": 1,
             "location": "exit", "reason": "cleanliness"}
        # central may still be starting: the device side re-sends until a receipt comes, as the sync agent does
        wait_for(lambda: peer.publish(topics.ratings("store-1", "kiosk-1"), message("kiosk-1", r))
                 or peer.on("/kiosk-1/ack"), 30, interval=0.5, message="a receipt from the central process")
        [req] = wait_for(lambda: receiver.requests, 15, message="the exit lead's phone")
        assert req["path"] == "/exit-lead" and req["body"]["title"] == "Unhappy visitor at store-1 / exit"
        capsys.readouterr()
        assert main(["alerts", "list", "--db", str(db), "--json"]) == 0
        [alert] = json.loads(capsys.readouterr().out)
        assert main(["alerts", "resolve", alert["id"][:8], "--db", str(db), "--by", "exit-lead",
                     "--root-cause", "bin overflowing", "--action", "We empty the bins every hour now"]) == 0
        outcome = wait_for(lambda: peer.on("/outcomes/exit"), 15, message="you said, we did on the kiosk topic")
        assert outcome[0]["items"][0]["text"] == {
            "en": "You told us about cleanliness: We empty the bins every hour now.",
            "sv": "Ni sa till om renlighet: We empty the bins every hour now."}
    finally:
        peer.close()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(15)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0
