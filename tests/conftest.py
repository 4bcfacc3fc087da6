"""Fixtures every part's tests share: a real Mosquitto per test, device configs, a running central.

Nothing a test starts outlives the suite: ``spawn`` runs subprocesses in their own process group and kills the
group and anything naming the test's folder at teardown; at the end of the session every process naming the
session's temporary folder, and every Mosquitto this process started, is killed.

PostgreSQL: when a server answers at the test URL (``pg_isready``), its tests are required (they fail rather
than skip); ``SMILELOOP_REQUIRE_POSTGRES=0`` or ``=1`` in the environment decides instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import tomli_w

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")

from central.service import CentralService
from central.store import CentralStore
from smileloop_core.mosquitto import Mosquitto, kill_all
from smileloop_core.mqtt import BrokerSettings

PG_TEST_URL = os.environ.get("SMILELOOP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_answers(url: str = PG_TEST_URL) -> bool:
    """Whether a PostgreSQL server answers at ``url`` (``pg_isready``: accepting or rejecting; else a TCP probe)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    pg_isready = shutil.which("pg_isready")
    if pg_isready is not None:
        try:
            done = subprocess.run([pg_isready, "-q", "-h", host, "-p", str(port), "-t", "3"], timeout=10, check=False)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode in (0, 1)  # 2: no response, 3: no attempt
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


if os.environ.get("SMILELOOP_REQUIRE_POSTGRES", "") == "":
    os.environ["SMILELOOP_REQUIRE_POSTGRES"] = "1" if postgres_answers() else "0"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--reverse-order", action="store_true",
                     help="Run the tests in reverse order (make test-reverse): no test may need the one before it.")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--reverse-order"):
        items.reverse()


def pytest_report_header(config: pytest.Config) -> str:
    required = os.environ.get("SMILELOOP_REQUIRE_POSTGRES") == "1"
    return (f"postgres: {'required' if required else 'optional (its tests skip when unreachable)'} "
            f"at {urlsplit(PG_TEST_URL).netloc.rpartition('@')[2]} (SMILELOOP_REQUIRE_POSTGRES="
            f"{os.environ.get('SMILELOOP_REQUIRE_POSTGRES')})")


def kill_processes_mentioning(marker: str, timeout: float = 5.0) -> list[int]:
    """SIGKILL every process whose command line contains ``marker``, e.g. a test's tmp folder; the pids killed.

    Only processes a test started name that folder; this process and its ancestors (a shell that ran pytest
    with ``--basetemp``) are never touched.
    """
    killed: list[int] = []
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return killed
    spared = _ancestors()
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit() or int(entry.name) in spared:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for pid in killed:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    return killed


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def _alive(pid: int) -> bool:
    """Still running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def stop_process_group(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """SIGKILL ``proc``'s process group (it was started with ``start_new_session``) and reap ``proc``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[Any]]]:
    """``spawn(args, **popen_kwargs)``: a subprocess in its own process group, killed with all it started.

    At teardown, passed or failed: the group is killed, then any process whose command line names this test's
    ``tmp_path`` (a Mosquitto the child started in a session of its own, for one).
    """
    started: list[subprocess.Popen[Any]] = []

    def start(args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        proc: subprocess.Popen[Any] = subprocess.Popen(args, start_new_session=True, **kwargs)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            stop_process_group(proc)
        kill_processes_mentioning(str(tmp_path))


@pytest.fixture(scope="session", autouse=True)
def _nothing_outlives_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """At the very end: every broker this process started, and every process naming our temp folder, killed."""
    base = str(tmp_path_factory.getbasetemp()).rstrip("/") + "/"
    yield
    left = kill_all() + kill_processes_mentioning(base)
    if left:
        print(f"\nkilled {len(left)} process(es) tests left running: {sorted(set(left))}", file=sys.stderr)


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
             message: str = "condition") -> Any:
    """Poll ``condition`` until it is truthy; fail the test with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {value!r})")
        time.sleep(interval)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private Mosquitto on a free loopback port; tests may ``kill()`` and ``start()`` it."""
    b = Mosquitto(tmp_path / "broker")  # it holds its port reserved, so a restart finds it free
    b.start()
    try:
        yield b
    finally:
        b.kill()
        b.close()


def write_device_config(directory: Path, broker_url: str, **sections: dict[str, Any]) -> Path:
    """A device.toml in ``directory``; ``sections`` override or add tables (e.g. survey={...})."""
    data: dict[str, Any] = {
        "device": {"id": "kiosk-1", "site": "store-1", "location": "exit"},
        "broker": {"url": broker_url},
        "storage": {"path": "device.db"},
        "sync": {"ack_timeout": 3, "batch_delay": 0.2, "reconnect_min": 0.1, "reconnect_max": 1.0},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "device.toml"
    path.write_text(tomli_w.dumps(data))
    return path


@pytest.fixture
def device_config(tmp_path: Path, broker: Mosquitto) -> Callable[..., Path]:
    def make(name: str = "kiosk-1", **sections: dict[str, Any]) -> Path:
        sections.setdefault("device", {}).setdefault("id", name)
        return write_device_config(tmp_path / name, broker.url, **sections)
    return make


@pytest.fixture
def central(tmp_path: Path, broker: Mosquitto) -> Iterator[CentralService]:
    """Central on its own thread, subscribed to the test broker, storing in a tmp SQLite file."""
    store = CentralStore(tmp_path / "central.db")
    service = CentralService(store, BrokerSettings.from_url(broker.url, connect_timeout=2.0))
    service.conn.backoff.cap = 1.0
    service.start()
    assert service.wait_ready(10), "central did not subscribe"
    try:
        yield service
    finally:
        service.stop()
        store.close()
