"""A NATS cluster for tests: nodes written by provisioning's config writer, on reserved loopback ports, each
its own process that a test may SIGKILL and start again (same store, same ports)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from provisioning.inventory import Device
from provisioning.nats import NatsNode, write_nats_config
from smileloop_core.mosquitto import PortReservation, reserve_port

NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"


class NatsCluster:
    """``NatsCluster(dir, accounts=…, devices=…, passwords=…)`` writes the configs; ``start()`` every node;
    ``kill(i)``/``start(i)`` one; ``close()`` stops them all, whatever state they are in."""

    def __init__(self, directory: Path, *, accounts: Mapping[str, str], devices: Iterable[Device],
                 passwords: Mapping[str, str], size: int = 3) -> None:
        self.directory = directory
        self._reservations: list[PortReservation] = [reserve_port() for _ in range(3 * size)]
        ports = [r.port for r in self._reservations]
        self.nodes = [NatsNode(f"n{i + 1}", *ports[3 * i:3 * i + 3]) for i in range(size)]
        self.confs, self.skipped = write_nats_config(directory, self.nodes, accounts=accounts, devices=devices,
                                                     passwords=passwords)
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size

    def mqtt_url(self, i: int) -> str:
        return f"mqtt://127.0.0.1:{self.nodes[i].mqtt_port}?protocol=3.1.1"

    def nats_url(self, i: int) -> str:
        return f"nats://127.0.0.1:{self.nodes[i].client_port}"

    def log(self, i: int) -> Path:
        return self.directory / f"{self.nodes[i].name}.log"

    def start(self, i: int | None = None, timeout: float = 15.0) -> NatsCluster:
        """Start node ``i`` (or every node not running) and wait until each listens for MQTT and NATS."""
        which = [i] if i is not None else [k for k, p in enumerate(self.procs) if p is None]
        for k in which:
            with self.log(k).open("ab") as log:
                self.procs[k] = subprocess.Popen([NATS, "-c", str(self.confs[k])], stdout=log,
                                                 stderr=subprocess.STDOUT, start_new_session=True)
        for k in which:
            self._wait_listening(k, timeout)
        return self

    def _wait_listening(self, k: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        node, proc = self.nodes[k], self.procs[k]
        assert proc is not None
        for port in (node.client_port, node.mqtt_port):
            while True:
                assert proc.poll() is None, self.log(k).read_text()[-2000:]
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"{node.name} does not listen on {port}"
                    time.sleep(0.05)

    def kill(self, i: int) -> None:
        """SIGKILL: no goodbye to the routes, no flush of the store."""
        proc, self.procs[i] = self.procs[i], None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    def close(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for k, proc in enumerate(self.procs):
            if proc is None:
                continue
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            self.procs[k] = None
        for r in self._reservations:
            r.release()
