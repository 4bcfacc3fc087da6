"""The Kivy app: a window, the screens, a timer that ticks the flow. No storage or network here.

Everything runs on Kivy's main thread: touches call the flow, the flow records through the
Recorder (one SQLite transaction) and tells the app which screen to draw.
"""

from __future__ import annotations

import logging
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.input.motionevent import MotionEvent
from kivy.uix.floatlayout import FloatLayout

from kiosk_ui.flow import KioskFlow, Step
from kiosk_ui.screens import SCREENS, KioskScreen

log = logging.getLogger(__name__)

CORNER = 0.1  # the staff gesture's corner: this share of the shorter side, top left
TICK = 0.25  # seconds between flow ticks (timers need no finer grain)


class KioskRoot(FloatLayout):
    """Sees every touch first: any touch keeps the visitor's session alive; the corner is staff's."""

    def __init__(self, app: KioskApp, **kw: Any) -> None:
        super().__init__(**kw)
        self.app = app

    def in_corner(self, x: float, y: float) -> bool:
        side = min(self.width, self.height) * CORNER
        return x <= self.x + side and y >= self.top - side

    def on_touch_down(self, touch: MotionEvent) -> bool:
        flow = self.app.flow
        flow.touched()
        if self.in_corner(touch.x, touch.y):
            flow.corner_tap()
            return True
        return bool(super().on_touch_down(touch))


class KioskApp(App):
    """Draws a :class:`KioskFlow`; :meth:`use` swaps in another flow (a new config, or the next test)."""

    title = "smileloop kiosk"

    def __init__(self, flow: KioskFlow, *, tick: float = TICK, **kw: Any) -> None:
        super().__init__(**kw)
        self.flow = flow
        self.tick_interval = tick
        self.ticks = 0  # how often the timer has ticked the flow: tests wait for the next one, not for wall time
        self.screens: dict[Step, KioskScreen] = {}
        self.stage: FloatLayout | None = None

    def build(self) -> KioskRoot:
        # One screen on stage at a time, swapped in the same frame: no transition that could swallow a touch.
        self.stage = FloatLayout()
        self.screens = {cls.step: cls() for cls in SCREENS}
        root = KioskRoot(self)
        root.add_widget(self.stage)
        Clock.schedule_interval(self._tick, self.tick_interval)
        Window.bind(on_resize=lambda *_: self.redraw())
        self.use(self.flow)
        return root

    def use(self, flow: KioskFlow) -> None:
        """Draw ``flow`` from now on (the old one's listener is removed)."""
        if self._on_flow in self.flow.listeners:
            self.flow.listeners.remove(self._on_flow)
        self.flow = flow
        flow.listeners.append(self._on_flow)
        self.redraw()

    def redraw(self) -> None:
        if self.stage is None:
            return
        screen = self.screens[self.flow.step]
        screen.build(self.flow)
        if self.shown() is not screen:
            self.stage.clear_widgets()
            self.stage.add_widget(screen)

    def shown(self) -> KioskScreen | None:
        """The screen on stage now."""
        if self.stage is None or not self.stage.children:
            return None
        screen: KioskScreen = self.stage.children[0]
        return screen

    def _on_flow(self, what: str) -> None:
        if what == "exit":
            self.stop()
            return
        if self.stage is None:
            return
        screen = self.screens[self.flow.step]
        if what in ("text", "outcome", "status") and self.shown() is screen:
            screen.update(self.flow)
        else:
            self.redraw()

    def _tick(self, _dt: float) -> None:
        try:
            self.flow.tick()
        except Exception:  # a timer bug must not take the kiosk down for months; it is logged
            log.exception("kiosk tick failed")
        finally:
            self.ticks += 1
