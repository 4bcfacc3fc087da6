"""The host side of a MicroPython button panel on a serial line (USB CDC, UART, or a pty in tests).

The panel sends ``TAP <boot> <n> <value> <age_ms>``; the host records the tap through the Recorder and
only then answers ``ACK <boot> <n>``, so a tap the host never stored is offered again. A tap offered
again after its ACK was lost is recognised by (boot, n) and acknowledged without recording it twice.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import serial

from device import Recorder, StoreError
from hardware.errors import PanelProtocolError
from smileloop_core.errors import InvalidRating

log = logging.getLogger("smileloop.panel")

SEEN_LIMIT = 10_000  # (boot, n) pairs remembered for duplicate detection


def parse_tap(line: str) -> tuple[str, int, int, float]:
    """``TAP <boot> <n> <value> <age_ms>`` → (boot, n, value, age seconds)."""
    parts = line.split()
    if len(parts) != 5 or parts[0] != "TAP":
        raise PanelProtocolError(f"expected 'TAP <boot> <n> <value> <age_ms>', got {line!r}")
    try:
        n, value, age_ms = int(parts[2]), int(parts[3]), int(parts[4])
    except ValueError:
        raise PanelProtocolError(f"n, value and age_ms must be whole numbers in {line!r}") from None
    if n < 1 or age_ms < 0:
        raise PanelProtocolError(f"n must be ≥ 1 and age_ms ≥ 0 in {line!r}")
    return parts[1], n, value, age_ms / 1000.0


class SerialPanelBridge:
    def __init__(self, port_url: str, recorder: Recorder, *, baudrate: int = 115200,
                 serial_factory: Callable[..., Any] = serial.serial_for_url) -> None:
        self.recorder = recorder
        self.port = serial_factory(port_url, baudrate=baudrate, timeout=0.2)
        self.panel_id: str | None = None
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self.recorded = 0
        self.duplicates = 0

    def handle_line(self, line: str) -> str | None:
        """One line from the panel → the reply to send (or None)."""
        line = line.strip()
        if not line:
            return None
        if line.startswith("HELLO"):
            parts = line.split()
            self.panel_id = parts[1] if len(parts) > 1 else None
            log.info("panel %s connected (%s)", self.panel_id, line)
            return None
        try:
            boot, n, value, age = parse_tap(line)
        except PanelProtocolError as e:
            log.warning("panel %s: %s", self.panel_id, e)
            return f"ERR {e}"
        key = (boot, n)
        if key in self._seen:
            self.duplicates += 1
            return f"ACK {boot} {n}"
        try:
            self.recorder.record(value, age=age)
        except InvalidRating as e:
            # A wiring or config mismatch: acknowledge so the panel stops offering it, and say so loudly.
            log.error("panel %s sent a tap that does not fit the scale: %s", self.panel_id, e)
            self._remember(key)
            return f"ACK {boot} {n}"
        except StoreError:
            log.exception("could not record a tap from panel %s; it stays on the panel", self.panel_id)
            return None
        self.recorded += 1
        self._remember(key)
        return f"ACK {boot} {n}"

    def _remember(self, key: tuple[str, int]) -> None:
        self._seen[key] = None
        while len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)

    def run(self, stop: threading.Event) -> None:
        buf = b""
        while not stop.is_set():
            chunk = self.port.read(256)
            if not chunk:
                continue
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                reply = self.handle_line(raw.decode("ascii", errors="replace"))
                if reply:
                    self.port.write(reply.encode("ascii", errors="replace") + b"\n")
            if len(buf) > 1024:  # a line that never ends: noise on the wire
                buf = b""

    def close(self) -> None:
        self.port.close()
