"""Rating faces drawn with canvas instructions: emoji do not render in Kivy's default font.

Each face differs by mouth (deep frown … wide open smile), brows and a symbol under it, not only
by colour, so colour-blind visitors tell them apart as easily as anyone.
"""

from __future__ import annotations

from typing import Any

from kivy.graphics import Color, Ellipse, Line
from kivy.properties import ListProperty, NumericProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.widget import Widget

# mood -1 (very unhappy) … +1 (very happy): colour, symbol.
RED = (0.84, 0.19, 0.16, 1)
ORANGE = (0.95, 0.52, 0.13, 1)
YELLOW = (0.98, 0.80, 0.18, 1)
LIGHT_GREEN = (0.55, 0.77, 0.25, 1)
GREEN = (0.13, 0.62, 0.29, 1)


def moods(points: int) -> list[float]:
    """Evenly spread moods for a scale with ``points`` faces."""
    return [-1 + 2 * i / (points - 1) for i in range(points)]


def mood_colour(mood: float) -> tuple[float, float, float, float]:
    if mood <= -0.9:
        return RED
    if mood < 0:
        return ORANGE
    if mood == 0:
        return YELLOW
    if mood < 0.9:
        return LIGHT_GREEN
    return GREEN


def mood_symbol(mood: float) -> str:
    """A shape-free hint readable in any colour vision: two minus, minus, equals, plus, two plus."""
    if mood <= -0.9:
        return "- -"
    if mood < 0:
        return "-"
    if mood == 0:
        return "="
    if mood < 0.9:
        return "+"
    return "+ +"


class Face(ButtonBehavior, Widget):
    """A tappable face; ``mood`` in -1..1 decides mouth and brows, ``value`` is what gets recorded."""

    mood = NumericProperty(0.0)
    value = NumericProperty(0)
    colour = ListProperty([1, 1, 1, 1])
    label = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bind(pos=self._draw, size=self._draw, mood=self._draw, colour=self._draw, state=self._draw)
        self._draw()

    def _draw(self, *_: Any) -> None:
        d = min(self.width, self.height) * (0.92 if self.state == "down" else 1.0)
        cx, cy = self.center_x, self.center_y
        r = d / 2
        m = self.mood
        self.canvas.clear()
        with self.canvas:
            Color(*self.colour)
            Ellipse(pos=(cx - r, cy - r), size=(d, d))
            Color(0.12, 0.12, 0.12, 1)
            Line(circle=(cx, cy, r), width=max(1.0, d * 0.015))
            eye_r = d * 0.07
            for side in (-1, 1):
                ex, ey = cx + side * d * 0.18, cy + d * 0.14
                Ellipse(pos=(ex - eye_r, ey - eye_r), size=(eye_r * 2, eye_r * 2))
                if m <= -0.9:  # angry brows slanting down to the middle
                    Line(points=[ex - side * d * 0.12, ey + d * 0.09, ex + side * d * 0.10, ey + d * 0.17],
                         width=d * 0.025, cap="round")
                elif m >= 0.9:  # raised, arched brows
                    Line(points=[ex - d * 0.09, ey + d * 0.12, ex, ey + d * 0.17, ex + d * 0.09, ey + d * 0.12],
                         width=d * 0.02, cap="round", joint="round")
            mouth_w = d * 0.26
            my = cy - d * 0.2
            if m >= 0.9:  # wide open smile: a filled half disc
                Ellipse(pos=(cx - mouth_w, my - mouth_w * 0.55), size=(mouth_w * 2, mouth_w * 1.6),
                        angle_start=90, angle_end=270)
            else:
                bend = m * d * 0.22  # positive: corners up (smile); negative: corners down (frown)
                Line(bezier=[cx - mouth_w, my + bend / 2, cx, my - bend, cx + mouth_w, my + bend / 2],
                     width=d * 0.03, cap="round")
