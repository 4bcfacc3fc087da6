"""Render every kiosk screen to PNG without a display (docs/screens, and the screen test).

Runs the real app under SDL's offscreen driver, walks a sample flow through each step on a fake
clock and saves what the window shows.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from device import DeviceStore, StoreError, parse_config
from kiosk_ui.flow import KioskFlow
from kiosk_ui.pin import hash_pin
from smileloop_core.clock import FakeClock

if TYPE_CHECKING:
    from kiosk_ui.app import KioskApp

SAMPLE_PIN = "2468"
# A Tuesday, 10:00 in Stockholm: open.
SAMPLE_TIME = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SAMPLE_OUTCOMES: list[dict[str, object]] = [
    {"id": "o-1", "resolved_at": "2026-11-23T15:00:00Z",
     "text": {"en": "You said the queue was long. We opened a second till at lunch.",
              "sv": "Ni sa att kön var lång. Vi öppnar en andra kassa vid lunch."}},
]


def sample_config(folder: Path, scale: str = "smiley4", **survey: Any) -> dict[str, Any]:
    """A device config (as parsed TOML) for demos, screenshots and tests."""
    return {
        "device": {"id": "kiosk-1", "site": "store-042", "location": "exit-north"},
        "survey": {"scale": scale, "languages": ["en", "sv"],
                   "question": {"en": "How was your visit today?", "sv": "Hur var ditt besök idag?"},
                   "reasons_negative": ["waiting_time", "staff", "cleanliness", "product", "price"],
                   "reasons_positive": ["staff", "speed", "cleanliness", "product"], **survey},
        "storage": {"path": str(folder / "device.db")},
        "hours": {"timezone": "Europe/Stockholm", "mon": "08:00-20:00", "tue": "08:00-20:00",
                  "wed": "08:00-20:00", "thu": "08:00-20:00", "fri": "08:00-20:00", "sat": "10:00-16:00",
                  "sun": "closed"},
        "staff": {"pin_hash": hash_pin(SAMPLE_PIN, iterations=1000)},
        "meta": {"version": 3},
    }


def sample_flow(folder: Path, scale: str = "smiley4") -> KioskFlow:
    folder.mkdir(parents=True, exist_ok=True)
    config = parse_config(sample_config(folder, scale), str(folder / "device.toml"), folder)
    store = DeviceStore(config.storage.path)
    store.replace_outcomes(SAMPLE_OUTCOMES, SAMPLE_TIME)
    store.save_agent_status({"connected": True, "backlog": 0, "last_delivery": "2026-11-24T08:59:58.120Z",
                             "last_error": None, "config_version": 3}, SAMPLE_TIME)
    clock = FakeClock(SAMPLE_TIME)
    flow = KioskFlow(config, store=store, clock=clock)
    flow.tick()
    return flow


@dataclass(frozen=True)
class Shot:
    name: str
    expected: tuple[str, ...]  # texts that must be on screen


def walk(flow: KioskFlow, lang: str) -> Iterator[Shot]:
    """Drive ``flow`` through every step in ``lang``, yielding after each so the caller can look."""
    clock = flow.clock
    assert isinstance(clock, FakeClock)
    sv = lang == "sv"
    flow.reset()
    if flow.lang != lang:
        flow.toggle_language()
    yield Shot(f"rating-{lang}", ("Hur var ditt besök idag?", "Ni sa, vi gjorde") if sv
               else ("How was your visit today?", "You said, we did"))
    flow.tap(1)
    yield Shot(f"reason-{lang}", ("Vad gick fel?", "Väntetid") if sv else ("What went wrong?", "Waiting time"))
    flow.choose_reason("waiting_time")
    flow.type_text("the queue was too long")
    flow.set_consent(True)
    flow.type_text("visitor@example.com")
    yield Shot(f"details-{lang}", ("Skicka", "Ni får kontakta mig") if sv else ("Send", "You may contact me"))
    flow.send_details()
    yield Shot(f"thanks-{lang}", ("Tack!",) if sv else ("Thank you!",))
    clock.advance(flow.timings.thanks + 1)
    flow.tick()
    clock.set_wall(datetime(2026, 11, 24, 21, 30, tzinfo=UTC))
    clock.advance(flow.timings.config_check + 1)
    flow.tick()
    _speak(flow, lang)
    yield Shot(f"sleep-{lang}", ("Vi har stängt", "08:00") if sv else ("We are closed", "08:00"))
    clock.set_wall(SAMPLE_TIME)
    flow.tick()
    for _ in range(flow.timings.staff_taps):
        flow.corner_tap()
    for digit in SAMPLE_PIN[:3]:
        flow.pin_key(digit)
    _speak(flow, lang)
    yield Shot(f"pin-{lang}", ("Personalens PIN-kod",) if sv else ("Staff PIN",))
    flow.pin_key(SAMPLE_PIN[3])
    flow.pin_submit()
    _speak(flow, lang)
    yield Shot(f"staff-{lang}", ("Personalläge", "Kö att skicka") if sv else ("Staff mode", "Backlog"))
    flow.leave_staff()
    flow.fail(StoreError("sample fault: the disk is full"))
    _speak(flow, lang)
    yield Shot(f"out_of_order-{lang}", ("Ur funktion",) if sv else ("Out of order",))
    flow.fault = None
    flow.reset()


def _speak(flow: KioskFlow, lang: str) -> None:
    """Show the current step in ``lang`` (steps after a reset speak the default language)."""
    flow.lang = lang
    flow._changed("language")


def visible_texts(widget: Any) -> list[str]:
    """Every non-empty text of a widget tree that is not hidden."""
    found: list[str] = []
    if getattr(widget, "opacity", 1) == 0:
        return found
    value = getattr(widget, "text", None)
    if isinstance(value, str) and value.strip():
        found.append(value)
    for child in getattr(widget, "children", []):
        found.extend(visible_texts(child))
    return found


def start_headless(app: KioskApp) -> None:
    """Build the app into the (offscreen) window without entering Kivy's blocking main loop."""
    from kivy.base import EventLoop
    from kivy.clock import Clock

    app._run_prepare()
    if EventLoop.status != "started":
        EventLoop.start()
    Clock._max_fps = 0  # frames as fast as they draw: tests wait on conditions, not on fps
    pump(3)


def pump(frames: int = 2) -> None:
    """Let Kivy run ``frames`` frames: scheduled callbacks, layout, drawing."""
    from kivy.base import EventLoop

    for _ in range(frames):
        EventLoop.idle()


def screenshot(path: Path) -> Path:
    """Save the window to exactly ``path`` (Kivy appends a counter to the name it is given)."""
    from kivy.core.window import Window

    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.with_suffix("")
    written = Window.screenshot(f"{stem}.png")
    if not written:
        raise StoreError(f"Kivy could not write a screenshot to {path}")
    Path(written).replace(path)
    return path


def render_all(app: KioskApp, out: Path, languages: tuple[str, ...] = ("en", "sv")) -> list[Path]:
    """Walk the app's flow through every step in each language, saving one PNG per screen."""
    written = []
    for lang in languages:
        for shot in walk(app.flow, lang):
            pump(3)
            written.append(screenshot(out / f"{shot.name}.png"))
    return written


def render_all_headless(out: Path, size: tuple[int, int] = (800, 480)) -> list[Path]:
    """``smileloop kiosk screenshots``: a private offscreen window and sample data in a temp folder."""
    os.environ["SDL_VIDEODRIVER"] = "offscreen"
    with tempfile.TemporaryDirectory(prefix="kiosk-shots-") as tmp:
        from kiosk_ui.window import configure_kivy

        configure_kivy(fullscreen=False, size=size, home=Path(tmp) / "kivy")
        from kiosk_ui.app import KioskApp

        app = KioskApp(sample_flow(Path(tmp) / "sample"))
        start_headless(app)
        written = render_all(app, out)
        nps = sample_flow(Path(tmp) / "nps", scale="nps")
        app.use(nps)
        pump(3)
        written.append(screenshot(out / "rating-nps-en.png"))
        return written
