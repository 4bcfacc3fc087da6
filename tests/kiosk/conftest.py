"""Kiosk fixtures: one headless Kivy app per test process, a fresh device (config, store, fake clock) per test.

Kivy allows one Window per process, so the app is session-scoped and each test hands it a new
``KioskFlow`` with ``app.use(flow)``. Touches go through Kivy's event loop (``UnitTestTouch``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w

# Before anything imports Kivy: offscreen GL, a private Kivy home, quiet logs, the kiosk's size.
os.environ["SDL_VIDEODRIVER"] = "offscreen"
if "KIVY_HOME" not in os.environ:
    os.environ["KIVY_HOME"] = tempfile.mkdtemp(prefix="kivy-home-")
    atexit.register(shutil.rmtree, os.environ["KIVY_HOME"], ignore_errors=True)
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")

from device.config import load_config
from device.store import DeviceStore
from kiosk_ui.flow import KioskFlow, Timings
from kiosk_ui.shots import SAMPLE_TIME, sample_config
from smileloop_core.clock import Clock, FakeClock
from tests.conftest import wait_for

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Short timers so tests run on the fake clock without waiting for real ones.
FAST = Timings(thanks=4.0, config_check=0.0, outcomes_refresh=0.0, outcome_rotate=8.0, disk_check=10.0,
               recover_every=30.0)


@dataclass
class Device:
    """One kiosk's files and clock, and the flow that runs it."""

    folder: Path
    config_path: Path
    clock: Any  # a FakeClock, or the real one for tests against central
    store: DeviceStore
    flow: KioskFlow

    def rows(self) -> list[dict[str, object]]:
        return self.store.all_ratings()

    def rewrite_config(self, **survey: Any) -> None:
        """What a config push does: replace the file (atomically) with new survey settings."""
        data = sample_config(self.folder, **survey)
        data["meta"]["version"] += 1
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(tomli_w.dumps(data))
        tmp.replace(self.config_path)

    def restart(self, seconds: float = 5.0) -> None:
        """Kill the kiosk and start it again ``seconds`` later on the same files: the store is reopened and a new
        flow built from the config file; nothing in memory survives (the clock goes on, on the same boot)."""
        self.store.close()
        self.clock.advance(seconds)
        config = load_config(self.config_path)
        self.store = DeviceStore(config.storage.path)
        self.flow = KioskFlow(config, store=self.store, clock=self.clock, timings=self.flow.timings,
                              config_path=self.config_path)


@pytest.fixture
def make_device(tmp_path: Path) -> Iterator[Callable[..., Device]]:
    devices: list[Device] = []

    def make(scale: str = "smiley4", timings: Timings = FAST, broker_url: str | None = None,
             clock: Clock | None = None, **survey: Any) -> Device:
        folder = tmp_path / f"device{len(devices)}"
        folder.mkdir()
        config_path = folder / "device.toml"
        data = sample_config(folder, scale, **survey)
        if clock is not None and not isinstance(clock, FakeClock):
            # The real clock: open all day, so the test passes at any hour (the sample hours close at night).
            data["hours"] = {"timezone": "UTC", **{d: "00:00-24:00" for d in DAYS}}
        if broker_url:
            data["broker"] = {"url": broker_url}
            data["sync"] = {"ack_timeout": 3, "batch_delay": 0.1, "reconnect_min": 0.1, "reconnect_max": 1.0}
        config_path.write_text(tomli_w.dumps(data))
        config = load_config(config_path)
        store = DeviceStore(config.storage.path)
        clock = clock or FakeClock(SAMPLE_TIME)
        flow = KioskFlow(config, store=store, clock=clock, timings=timings, config_path=config_path)
        devices.append(Device(folder, config_path, clock, store, flow))
        return devices[-1]

    yield make
    for device in devices:
        device.store.close()


@pytest.fixture(scope="session")
def kiosk_app() -> Iterator[Any]:
    """The real app, started headless once per test process."""
    from kiosk_ui.window import configure_kivy

    configure_kivy(fullscreen=False, size=(800, 480))
    from kiosk_ui.app import KioskApp
    from kiosk_ui.shots import sample_flow, start_headless

    with tempfile.TemporaryDirectory(prefix="kiosk-boot-") as tmp:
        app = KioskApp(sample_flow(Path(tmp)), tick=0.01)
        start_headless(app)
        yield app
        app.flow.store.close()


@dataclass
class Kiosk:
    """The app driving one test's device, with helpers that touch the screen like a visitor."""

    app: Any
    device: Device

    @property
    def flow(self) -> KioskFlow:
        return self.device.flow

    def pump(self, frames: int = 2) -> None:
        from kiosk_ui.shots import pump

        pump(frames)

    def wait(self, condition: Callable[[], Any], message: str, timeout: float = 5.0) -> Any:
        def check() -> Any:
            self.pump(1)
            return condition()
        return wait_for(check, timeout=timeout, message=message)

    def touch_at(self, x: float, y: float) -> None:
        from kivy.tests.common import UnitTestTouch

        touch = UnitTestTouch(x, y)
        touch.touch_down()
        touch.touch_up()
        self.pump(2)

    def touch(self, widget: Any) -> None:
        self.touch_at(*widget.to_window(*widget.center))

    def screen(self) -> Any:
        return self.app.shown()

    def widgets(self, kind: type | None = None) -> list[Any]:
        found: list[Any] = []

        def walk(w: Any) -> None:
            if kind is None or isinstance(w, kind):
                found.append(w)
            for child in w.children:
                walk(child)
        walk(self.screen())
        return found

    def find(self, text: str) -> Any:
        """The widget on the current screen showing exactly ``text``."""
        matches = [w for w in self.widgets() if getattr(w, "text", None) == text]
        assert matches, f"no {text!r} on screen {self.screen().name}; texts: {self.texts()}"
        return matches[0]

    def tap_text(self, text: str) -> None:
        self.touch(self.find(text))

    def face(self, value: int) -> Any:
        from kiosk_ui.faces import Face

        faces = [f for f in self.widgets(Face) if f.value == value]
        assert faces, f"no face for {value} on {self.screen().name}"
        return faces[0]

    def texts(self) -> list[str]:
        from kiosk_ui.shots import visible_texts

        return visible_texts(self.screen())

    def type(self, text: str) -> None:
        """Type on the on-screen keyboard, key by key."""
        space = self.flow.t("Space")
        for ch in text:
            self.tap_text(space if ch == " " else ch)

    def corner(self, taps: int = 5) -> None:
        from kivy.core.window import Window

        for _ in range(taps):
            self.touch_at(5, Window.height - 5)

    def restart(self, seconds: float = 5.0) -> None:
        """The kiosk process killed and started again (see :meth:`Device.restart`), drawn by the same window."""
        self.device.restart(seconds)
        self.app.use(self.device.flow)
        self.pump(3)

    def pin(self, digits: str) -> None:
        """Type ``digits`` on the PIN pad and press OK."""
        for d in digits:
            self.tap_text(d)
        self.tap_text("OK")

    def tick(self, seconds: float = 0.0, ticks: int = 2) -> None:
        """Let the fake clock move, then run frames until the app's own timer has ticked the flow ``ticks`` times
        (each sees the new time: the clock moves between frames, on this thread)."""
        self.device.clock.advance(seconds)
        start = self.app.ticks
        self.wait(lambda: self.app.ticks >= start + ticks, f"{ticks} ticks of the app's timer")


@pytest.fixture
def kiosk(kiosk_app: Any, make_device: Callable[..., Device]) -> Callable[..., Kiosk]:
    def start(**kw: Any) -> Kiosk:
        device = make_device(**kw)
        kiosk_app.use(device.flow)
        k = Kiosk(kiosk_app, device)
        k.pump(3)
        return k
    return start
