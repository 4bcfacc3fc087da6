"""The Wi-Fi panel's MQTT path — its own firmware modules, unchanged — under CPython, against a real Mosquitto
and a real central (CentralService): every press becomes exactly one central row, through a broker restart,
a connection dropped mid-publish, and a power cut between publish and receipt.

The firmware runs as a subprocess (tests/hardware/wifi_host.py) so that a power cut is a SIGKILL.
"""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from central import CentralService
from smileloop_core.mosquitto import Mosquitto
from tests.conftest import stop_process_group, wait_for

HOST = Path(__file__).with_name("wifi_host.py")


class Board:
    """The firmware process: presses go in on stdin, its events come back from stdout."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.events.put(json.loads(line))

    def press(self, value: int) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"press {value}\n")
        self.proc.stdin.flush()
        self.seen.clear()
        self.wait(lambda e: e.get("event") == "pressed")
        self.seen = self.seen[self.seen.index(next(e for e in self.seen if e.get("event") == "pressed")) + 1:]

    def wait(self, match: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> dict[str, Any]:
        for e in self.seen:
            if match(e):
                return e

        def pump() -> dict[str, Any] | None:
            while True:
                try:
                    e = self.events.get(timeout=0.05)
                except queue.Empty:
                    return None
                self.seen.append(e)
                if match(e):
                    return e

        return wait_for(pump, timeout=timeout, message="a firmware event")  # type: ignore[no-any-return]

    def drained(self, timeout: float = 15.0) -> None:
        """The journal is empty (every press receipted) and the link up, as reported since the last press."""
        self.wait(lambda e: e.get("event") == "state" and e["depth"] == 0 and e["up"], timeout)


@pytest.fixture
def board(tmp_path: Path, spawn: Callable[..., subprocess.Popen[Any]]) -> Callable[..., Board]:
    def start(port: int, *extra: str) -> Board:
        proc = spawn([sys.executable, str(HOST), "--dir", str(tmp_path), "--port", str(port), *extra],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return Board(proc)
    return start


def rows(central: CentralService) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in central.store.query(
        "SELECT id, seq, value, device_id, site, location FROM ratings ORDER BY seq")]


class Proxy:
    """A TCP relay between the panel and the broker that can cut the panel's link in the middle of a PUBLISH."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut: str | None = None  # "half": forward half the PUBLISH, "after": all of it, then cut
        self.cuts = 0
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self._socks += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upward: bool) -> None:
        try:
            while data := src.recv(65536):
                if upward and self.cut and data[0] == 0x32 and b"/ratings" in data[:64]:
                    mode, self.cut = self.cut, None
                    dst.sendall(data[:len(data) // 2] if mode == "half" else data)
                    self.cuts += 1
                    for s in (src, dst):
                        s.shutdown(socket.SHUT_RDWR)
                    return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                s.close()

    def close(self) -> None:
        self.listener.close()
        for s in self._socks:
            s.close()


@pytest.fixture
def proxy(broker: Mosquitto) -> Iterator[Proxy]:
    p = Proxy(broker.port)
    yield p
    p.close()


def test_presses_reach_central_exactly_once_through_a_broker_restart(
        broker: Mosquitto, central: CentralService, board: Callable[..., Board]) -> None:
    b = board(broker.port)
    b.press(1)
    b.press(4)
    b.drained()
    assert [r[1:] for r in rows(central)] == [(1, 1, "panel-1", "store-1", "exit"),
                                              (2, 4, "panel-1", "store-1", "exit")]
    broker.kill()
    b.press(2)
    b.press(3)
    b.wait(lambda e: e.get("event") == "state" and e["depth"] == 2 and not e["up"])
    broker.start()
    b.drained(timeout=20)
    got = wait_for(lambda: (r := rows(central)) and len(r) == 4 and r, message="four rows at central")
    assert [r[1:3] for r in got] == [(1, 1), (2, 4), (3, 2), (4, 3)] and len({r[0] for r in got}) == 4
    status = wait_for(lambda: central.store.query(
        "SELECT state, raw FROM device_status WHERE device_id = 'panel-1'"), message="the panel's status at central")
    assert status[0]["state"] == "online" and json.loads(status[0]["raw"])["kind"] == "panel"


def test_a_connection_dropped_mid_publish_loses_nothing_and_stores_once(
        broker: Mosquitto, central: CentralService, proxy: Proxy, board: Callable[..., Board]) -> None:
    b = board(proxy.port)
    b.wait(lambda e: e.get("event") == "state" and e["up"])
    proxy.cut = "half"  # half a PUBLISH reaches the broker, then the link dies: the broker drops it
    b.press(1)
    b.drained()
    proxy.cut = "after"  # the whole PUBLISH reaches the broker (and central), the PUBACK never comes back
    b.press(2)
    b.drained()
    assert proxy.cuts == 2
    got = wait_for(lambda: (r := rows(central)) and len(r) == 2 and r, message="two rows at central")
    assert [r[1:3] for r in got] == [(1, 1), (2, 2)]
    b.press(3)
    b.drained()
    assert len(rows(central)) == 3
    assert central.store.count("rejected") == 0


def test_a_power_cut_between_publish_and_receipt_is_sent_again_and_stored_once(
        broker: Mosquitto, central: CentralService, board: Callable[..., Board]) -> None:
    first = board(broker.port, "--press", "1,2,3", "--halt-after-publish")
    first.wait(lambda e: e.get("event") == "published" and e["seqs"] == [1, 2, 3])
    wait_for(lambda: len(rows(central)) == 3, message="central stored the three")
    stop_process_group(first.proc)  # the power goes: the receipt was never read, the journal still holds them
    second = board(broker.port)
    start = second.wait(lambda e: e.get("event") == "start")
    assert start["depth"] == 3 and start["seqs"] == [1, 2, 3]
    second.drained()
    second.wait(lambda e: e.get("event") == "published" and e["seqs"] == [1, 2, 3])
    got = rows(central)
    assert [r[1:3] for r in got] == [(1, 1), (2, 2), (3, 3)], "sent twice, stored once"
    second.press(4)
    second.drained()
    assert [r[1] for r in rows(central)] == [1, 2, 3, 4], "numbering goes on after the power cut"
