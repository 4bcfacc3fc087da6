"""Tap to thank-you on the real Kivy app, headless: what a visitor waits between touching a face and seeing
"Thank you!" (touch through Kivy's event loop → Recorder → SQLite ``synchronous=FULL`` → screen switch →
the frame drawn).

Interleaved with a baseline in the same process: one frame that redraws the thank-you screen with no tap,
so the figure that matters is the ratio (noise on a shared machine moves both). A negative tap, which shows
the follow-up question instead, is measured too.

    python -m bench.kiosk_tap --taps 200          # prints JSON
    python -m bench --quick                       # the bench runner calls measure() in its own process
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import tomli_w


def _setup(workdir: Path) -> Any:
    os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    os.environ.setdefault("KIVY_HOME", str(workdir / "kivy"))
    from kiosk_ui.window import configure_kivy

    configure_kivy(fullscreen=False, size=(800, 480))
    from device.config import load_config
    from kiosk_ui.app import KioskApp
    from kiosk_ui.flow import KioskFlow, Timings
    from kiosk_ui.shots import sample_config, start_headless

    workdir.mkdir(parents=True, exist_ok=True)
    data = sample_config(workdir)
    data["hours"] = {"timezone": "UTC"}  # always open, whatever time the bench runs
    path = workdir / "device.toml"
    path.write_text(tomli_w.dumps(data))
    # The thank-you screen never times out on its own here: the bench resets between taps.
    flow = KioskFlow(load_config(path), timings=Timings(thanks=3600, config_check=3600, outcomes_refresh=3600))
    app = KioskApp(flow, tick=3600)
    start_headless(app)
    return app


def _tap(app: Any, value: int) -> tuple[float, float, str]:
    """Seconds from touch down to the next screen drawn, seconds spent in the Recorder, and that screen."""
    from kivy.base import EventLoop
    from kivy.tests.common import UnitTestTouch

    from kiosk_ui.faces import Face

    flow = app.flow
    recorder = flow.recorder
    face = next(w for w in app.shown().walk() if isinstance(w, Face) and w.value == value)
    x, y = face.to_window(*face.center)
    record = recorder.record
    spent = [0.0]

    def timed(*a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return record(*a, **kw)
        finally:
            spent[0] = time.perf_counter() - t

    recorder.record = timed
    try:
        t0 = time.perf_counter()
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        touch.touch_up()
        EventLoop.idle()  # the frame that shows the new screen
        elapsed = time.perf_counter() - t0
    finally:
        del recorder.record
    return elapsed, spent[0], app.shown().name


def _baseline(app: Any) -> float:
    """One frame redrawing the current screen, with no tap."""
    from kivy.base import EventLoop

    t0 = time.perf_counter()
    app.redraw()
    EventLoop.idle()
    return time.perf_counter() - t0


def measure(workdir: Path, taps: int = 100) -> dict[str, Any]:
    from bench.stats import summary
    from kiosk_ui.shots import pump

    app = _setup(workdir)
    flow = app.flow
    thanks, followup, record, base = [], [], [], []
    for i in range(taps):
        flow.reset()
        pump(2)
        negative = i % 4 == 3  # one visitor in four is unhappy: the follow-up screen
        elapsed, in_recorder, screen = _tap(app, 1 if negative else 3)
        expected = "reason" if negative else "thanks"
        if screen != expected:
            raise RuntimeError(f"tap {i} showed {screen!r}, expected {expected!r}")
        (followup if negative else thanks).append(elapsed)
        record.append(in_recorder)
        base.append(_baseline(app))
    rows = len(flow.store.all_ratings())
    if rows != taps:
        raise RuntimeError(f"{taps} taps but {rows} rows stored")
    ratio = median(thanks) / median(base) if base else float("nan")
    return {
        "what": "tap to thank-you on the real Kivy app (offscreen, llvmpipe), SQLite synchronous=FULL",
        "tap_to_thank_you_ms": summary(thanks, 1e3),
        "tap_to_follow_up_ms": summary(followup, 1e3),
        "recorder_ms": summary(record, 1e3),
        "baseline_frame_ms": summary(base, 1e3),
        "tap_vs_frame_ratio": ratio,
        "taps": taps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--taps", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiosk-tap-") as tmp:
        print(json.dumps(measure(Path(tmp), args.taps), indent=1))


if __name__ == "__main__":
    main()
