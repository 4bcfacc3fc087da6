"""A private Mosquitto process on a free loopback port, for the demo, the tests and the benchmarks.

Its config is written here, so callers can SIGKILL and restart it at will. Loopback only, ever.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from smileloop.errors import BrokerProcessError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        self.port = port or free_port()
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
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self._config_text())
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
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
        self.kill()
        raise BrokerProcessError(f"mosquitto did not listen on 127.0.0.1:{self.port} within {timeout}s")

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

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
