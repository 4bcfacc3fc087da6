"""The Wi-Fi panel firmware's own modules (hardware/firmware_wifi), unchanged, run by CPython as a "board".

Only what differs between a board and a PC is supplied here: the tick functions, the RTC, a Wi-Fi station that
is always up, and CPython's ``socket`` module (so the firmware's MQTT client talks to a real broker). Presses
come as lines on stdin (``press 3``); what happens goes to stdout as JSON lines. Run as a subprocess so a test
can kill it like a power cut: ``python wifi_host.py --dir D --host H --port P [--press 1,2] [--halt-after-publish]``
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import socket
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

FIRMWARE = Path(__file__).resolve().parents[2] / "hardware" / "firmware_wifi"


class Ticks:
    def ticks_ms(self) -> int:
        return int(time.monotonic() * 1000)

    def ticks_diff(self, a: int, b: int) -> int:
        return a - b


class AlwaysUp:
    """The `network.WLAN` of a PC: already connected."""

    def __init__(self, interface: int = 0) -> None:
        pass

    def isconnected(self) -> bool:
        return True

    def active(self, on: bool | None = None) -> bool:
        return True

    def connect(self, ssid: str, password: str) -> None:
        pass

    def status(self, what: str | None = None) -> int:
        return -55


def say(**event: Any) -> None:
    print(json.dumps(event), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--device", default="panel-1")
    ap.add_argument("--site", default="store-1")
    ap.add_argument("--press", default="", help="comma-separated values pressed before the link comes up")
    ap.add_argument("--halt-after-publish", action="store_true", help="freeze after the first PUBACK")
    ap.add_argument("--ack-timeout-ms", type=int, default=3000)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(FIRMWARE))
    from app import Panel  # the firmware's modules, as copied to a board
    from hours import Hours
    from journal import Journal
    from uplink import Clock, Uplink
    from wifi import Wifi

    ticks = Ticks()
    clock = Clock(ticks, lambda: int(time.time() * 1000), uuid.uuid4().hex[:8])
    journal = Journal(os.path.join(args.dir, "journal.log"))
    panel = Panel([], journal, clock, Hours({}), os.urandom, config_file=os.path.join(args.dir, "central.json"))
    clock.synced = True
    settings = {"device": args.device, "site": args.site, "location": "exit", "scale": "smiley4",
                "host": args.host, "port": args.port}

    def published(batch: list[Any]) -> None:
        say(event="published", seqs=[p.seq for p in batch])
        if args.halt_after_publish:
            time.sleep(3600)  # frozen before the receipt is read: the test pulls the plug

    link = Uplink(settings, journal, clock, socket, Wifi(SimpleNamespace(WLAN=AlwaysUp, STA_IF=0), "", "", ticks),
                  random.randrange, status_fields=panel.status_fields, on_config=panel.apply_config,
                  ntp_ms=lambda: time.time() * 1000, on_published=published, ack_timeout_ms=args.ack_timeout_ms,
                  backoff_min_ms=100, backoff_max_ms=1000, timeout=2.0, keepalive=10)
    for v in filter(None, args.press.split(",")):
        panel.press(int(v))
    say(event="start", depth=len(journal.pending), seqs=[p.seq for p in journal.pending], torn=journal.torn)
    commands: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [commands.put(line.strip()) for line in sys.stdin], daemon=True).start()
    depth, up = None, None
    while True:
        while not commands.empty():
            cmd = commands.get().split()
            if cmd[:1] == ["press"]:
                p = panel.press(int(cmd[1]))
                say(event="pressed", seq=p.seq if p else None)
            elif cmd[:1] == ["quit"]:
                return 0
        link.step(wait_ms=20)
        if (len(journal.pending), link.up) != (depth, up):
            depth, up = len(journal.pending), link.up
            say(event="state", depth=depth, up=up, error=link.last_error)


if __name__ == "__main__":
    sys.exit(main())
