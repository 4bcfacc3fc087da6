"""The console on real parts, for the browser tests: a private Mosquitto, central and the console as processes on
one SQLite file, kiosks (Recorder + sync agent) tapping through them, and headless Chromium driven by Playwright.

Every wait has a deadline (:func:`tests.conftest.wait_for`, Playwright's ``timeout``); every process started
here is stopped by :meth:`Rig.close` (its process group killed), passed or failed.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device.config import load_config
from device.recorder import Recorder
from device.store import DeviceStore
from smileloop_core.mosquitto import Mosquitto, reserve_port
from sync_agent.agent import SyncAgent
from tests.conftest import stop_process_group, wait_for, write_device_config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "a long test passphrase"

ORG_TOML = """
name = "Acme"

[sites.store-1]
name = "Store 1"
timezone = "Europe/Stockholm"
[sites.store-1.locations.exit]
devices = ["kiosk-1"]
[sites.store-1.locations.cafe]
devices = ["kiosk-3"]

[sites.store-2]
name = "Store 2"
timezone = "Europe/Stockholm"
[sites.store-2.locations.door]
devices = ["kiosk-2"]
"""
# one unhappy tap, one alert: no cooldown grouping a second tap under the first
RULES_TOML = """
[default.negative_rating]
cooldown = 0
"""
KIOSKS = {"kiosk-1": ("store-1", "exit"), "kiosk-2": ("store-2", "door"), "kiosk-3": ("store-1", "cafe")}


def smileloop(*args: str, log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """``python -m smileloop ARGS`` as a process in its own group (so :func:`stop_process_group` ends all of it)."""
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "smileloop", *args], stdout=out, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True, cwd=cwd)


def run(*args: str, cwd: Path, timeout: float = 60) -> str:
    done = subprocess.run([sys.executable, "-m", "smileloop", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)
    assert done.returncode == 0, f"smileloop {' '.join(args)}: {done.stderr}"
    return done.stdout


def add_user(db: Path, name: str, role: str, *sites: str, password: str = PASSWORD) -> None:
    """``smileloop users add`` as an operator runs it (the password from a file)."""
    secret = db.parent / f"{name}.pass"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    run("users", "add", name, "--role", role, *[a for s in sites for a in ("--site", s)], "--password-file",
        str(secret), "--db", str(db), cwd=db.parent)


def org_document(db: Path) -> str:
    """The org tree central stored (JSON text), read-only; "" while central has not made it yet."""
    if not db.exists():
        return ""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)) as c:
            row = c.execute("SELECT body FROM documents WHERE name = 'org'").fetchone()
    except sqlite3.Error:
        return ""
    return str(row[0]) if row else ""


def answers(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return None


class Kiosk:
    """A device as the loop tests make one: its Recorder and a running sync agent (a thread)."""

    def __init__(self, directory: Path, broker_url: str, device: str) -> None:
        site, location = KIOSKS[device]
        cfg = load_config(write_device_config(directory / device, broker_url,
                                              device={"id": device, "site": site, "location": location},
                                              survey={"response_interval": 0}))
        self.recorder = Recorder(DeviceStore(cfg.storage.path), cfg)
        self.agent = SyncAgent(cfg, DeviceStore(cfg.storage.path))
        self.recorder.on_record(self.agent.wake)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.agent.run, args=(self._stop,), name=f"sync-{device}",
                                        daemon=True)
        self._thread.start()

    def tap(self, value: int, reason: str | None = None, timeout: float = 20) -> str:
        """A visitor's tap; returns the rating id once central has receipted it."""
        rating = self.recorder.record(value, reason=reason)
        wait_for(lambda: self.recorder.store.state_of(rating.id) == "delivered", timeout,
                 message=f"central's receipt for tap {rating.id}")
        return str(rating.id)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


@dataclass
class Rig:
    """Broker, central, console and kiosks, started in that order by :func:`start_rig`."""

    work: Path
    broker: Mosquitto
    db: Path
    console_url: str = ""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kiosks: dict[str, Kiosk] = field(default_factory=dict)

    def log(self, name: str) -> str:
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def close(self) -> None:
        for k in self.kiosks.values():
            k.close()
        for proc in self.processes:
            stop_process_group(proc)
        self.broker.kill()
        self.broker.close()


@contextlib.contextmanager
def start_rig(work: Path) -> Iterator[Rig]:
    """Mosquitto on a free loopback port; ``smileloop central --org --rules`` on ``work/central.db``; users
    admin, anna (manager of store-1) and bo (manager of store-2); ``smileloop console`` on a free port; kiosks
    kiosk-1 (store-1/exit), kiosk-3 (store-1/cafe) and kiosk-2 (store-2/door), each with a sync agent and one
    happy tap delivered (so every part is known to be up before a test begins)."""
    broker = Mosquitto(work / "broker")
    broker.start()
    rig = Rig(work, broker, work / "central.db")
    try:
        (work / "org.toml").write_text(ORG_TOML)
        (work / "rules.toml").write_text(RULES_TOML)
        rig.processes.append(smileloop("central", "--broker", broker.url, "--db", str(rig.db), "--org",
                                       str(work / "org.toml"), "--rules", str(work / "rules.toml"),
                                       log=work / "central.log", cwd=work))
        wait_for(lambda: "store-2" in org_document(rig.db), 30, interval=0.1,
                 message=f"central's store with the org loaded: {rig.log('central')}")
        add_user(rig.db, "admin", "admin")
        add_user(rig.db, "anna", "manager", "store-1")
        add_user(rig.db, "bo", "manager", "store-2")
        with reserve_port() as port:
            rig.processes.append(smileloop("console", "--db", str(rig.db), "--host", "127.0.0.1", "--port",
                                           str(port.port), "--no-secure-cookies", log=work / "console.log",
                                           cwd=work))
            rig.console_url = f"http://127.0.0.1:{port.port}"
            wait_for(lambda: answers(rig.console_url + "/login") == 200, 30, interval=0.2,
                     message=f"the console at {rig.console_url}: {rig.log('console')}")
        for device in KIOSKS:
            rig.kiosks[device] = Kiosk(work, broker.url, device)
            rig.kiosks[device].tap(4, timeout=40)  # central may still be subscribing: the agent resends
        yield rig
    finally:
        rig.close()


class Browser:
    """Headless Chromium (Debian's) through Playwright; :meth:`page` opens a page in a fresh context (its own
    cookies: another person) that records console errors and page errors (a CSP violation is one)."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        self.errors: list[str] = []

    def page(self, base_url: str, **context_options: Any) -> Any:
        context = self.browser.new_context(base_url=base_url, **context_options)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text} @ {page.url}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e} @ {page.url}"))
        return page

    def expected(self, text: str) -> None:
        """An error the test caused on purpose (a 403 page it opened): not a failure."""
        self.errors = [e for e in self.errors if text not in e]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.browser.close()
        self._pw.stop()


def log_in(page: Any, name: str, password: str = PASSWORD) -> None:
    """Through the login form, as a person does; ends on the alert list."""
    page.goto("/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert urlpath(page.url) == "/alerts", f"login as {name} ended on {page.url}: {page.content()[:500]}"


def urlpath(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path


def alert_of(db: Path, rating_id: str, timeout: float = 10) -> str:
    """The id of the alert central opened for a rating (waits for it)."""
    def find() -> str | None:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)) as c:
            row = c.execute("SELECT id FROM alerts WHERE rating_id = ?", (rating_id,)).fetchone()
        return str(row[0]) if row else None
    return str(wait_for(find, timeout, interval=0.05, message=f"central's alert for rating {rating_id}"))


def audit_of(db: Path, alert_id: str) -> list[tuple[str, str]]:
    """(action, actor) of an alert's audit trail, oldest first."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)) as c:
        return [(str(a), str(b)) for a, b in
                c.execute("SELECT action, actor FROM alert_audit WHERE alert_id = ? ORDER BY id", (alert_id,))]
