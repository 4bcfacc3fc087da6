"""A private Mosquitto process on a free loopback port, for the demo, the tests and the benchmarks.

Its config is written here, so callers can SIGKILL and restart it at will. Loopback only, ever.

A port picked by :func:`free_port` is free only at that moment: another process (a second test worker) may be
handed it before the broker binds it, or while a killed broker is down before its restart. So a broker that
picks its own port keeps it *reserved* (:func:`reserve_port`) for as long as the object lives, and a first start
that still finds its port taken moves to a new one. Every broker still running when the interpreter exits is
killed (``atexit``); :func:`kill_all` does it on demand (the test suite calls it at the end).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import weakref
from pathlib import Path

from smileloop_core.errors import BrokerProcessError

_START_ATTEMPTS = 3  # a first start that finds its self-picked port taken tries this many ports in all


def free_port() -> int:
    """A loopback port free at this moment (racy: prefer :func:`reserve_port` where the gap matters)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PortReservation:
    """A loopback port held by a bound, never-listening socket with ``SO_REUSEADDR``.

    While it is held the kernel hands the port to no other ``bind(port 0)`` or outgoing connection, in any
    process, yet a server that also sets ``SO_REUSEADDR`` (Mosquitto, asyncio) can bind and listen on it.
    ``with reserve_port() as r: start_server(r.port)``; ``release()`` gives it back.
    """

    def __init__(self) -> None:
        self._sock: socket.socket | None = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])

    def release(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __del__(self) -> None:  # an object dropped without release() gives the port back quietly
        self.release()

    def __enter__(self) -> PortReservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def reserve_port() -> PortReservation:
    return PortReservation()


_running: weakref.WeakSet[Mosquitto] = weakref.WeakSet()
_running_lock = threading.Lock()


def kill_all() -> list[int]:
    """SIGKILL every broker this process started that is still running; their pids."""
    with _running_lock:
        brokers = list(_running)
    pids = [b.proc.pid for b in brokers if b.proc is not None and b.running]
    for b in brokers:
        b.kill()
    return pids


atexit.register(kill_all)


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)), None)


class Mosquitto:
    """``with Mosquitto(tmpdir) as broker: broker.url`` — started, and stopped on exit.

    ``extra_config`` lines are appended to the default listener config; pass ``config`` to replace it
    whole (its ``{port}`` and ``{dir}`` placeholders are filled in).
    """

    def __init__(self, workdir: str | Path, *, port: int | None = None, extra_config: str = "",
                 config: str | None = None, persistence: bool = False) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._reservation: PortReservation | None = None
        if not port:
            self._reservation = reserve_port()  # held while this object lives, so a restart finds it free
            port = self._reservation.port
        self.port = port
        self.extra_config = extra_config
        self.config_template = config
        self.persistence = persistence
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "mosquitto.log"
        binary = mosquitto_binary()
        if binary is None:
            raise BrokerProcessError("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.binary = binary

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _config_text(self) -> str:
        if self.config_template is not None:
            return self.config_template.format(port=self.port, dir=self.workdir)
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "max_queued_messages 100000",
            "max_inflight_messages 100",
        ]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/",
                      "autosave_interval 1"]
        if os.geteuid() == 0:
            lines.append("user root")
        return "\n".join(lines) + "\n" + self.extra_config + "\n"

    def start(self, timeout: float = 10.0) -> Mosquitto:
        """Start and wait until it listens. A first start on a self-picked port that is taken moves to another."""
        first = self.proc is None
        for attempt in range(1, _START_ATTEMPTS + 1):
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                return self._start_once(timeout)
            except BrokerProcessError:
                log = self.log_path.read_bytes()[log_start:].decode(errors="replace")
                if not (first and self._reservation is not None and "in use" in log and attempt < _START_ATTEMPTS):
                    raise
                self._reservation.release()
                self._reservation = reserve_port()
                self.port = self._reservation.port
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_once(self, timeout: float) -> Mosquitto:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self._config_text())
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        with _running_lock:
            _running.add(self)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise BrokerProcessError(
                        f"mosquitto exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                        return self
                except OSError:
                    time.sleep(0.02)
            raise BrokerProcessError(f"mosquitto did not listen on 127.0.0.1:{self.port} within {timeout}s")
        except BaseException:
            self.kill()  # never leave a half-started broker behind (Ctrl-C during the wait included)
            raise

    def kill(self) -> None:
        """SIGKILL: whatever the broker held in memory is gone."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def close(self) -> None:
        """Stop it and give its port back; the object is done."""
        self.stop()
        if self._reservation is not None:
            self._reservation.release()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
