"""The kiosk's screens: each draws one :class:`~kiosk_ui.flow.Step` of the flow and forwards touches to it.

Screens hold no state of their own: :meth:`KioskScreen.build` redraws from the flow, so a language
switch, a config push or an idle reset can never leave a stale text behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from kivy.graphics import Color, Rectangle
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.label import Label
from kivy.uix.togglebutton import ToggleButton
from kivy.uix.widget import Widget

from kiosk_ui.faces import Face, mood_colour, mood_symbol, moods
from kiosk_ui.flow import KioskFlow, Step
from kiosk_ui.i18n import N_, language_name
from kiosk_ui.texts import NPS_HIGH, NPS_LOW, SCALE_WORDS, reason_label
from smileloop_core.scales import get_scale

INK = (0.13, 0.13, 0.15, 1)
PAPER = (0.97, 0.96, 0.93, 1)
BLUE = (0.12, 0.36, 0.62, 1)
GREY = (0.55, 0.55, 0.58, 1)
WARN = (0.75, 0.25, 0.05, 1)
KEY = (0.3, 0.3, 0.34, 1)
GREEN = (0.13, 0.55, 0.29, 1)

KEY_ROWS = ("1234567890", "qwertyuiopå", "asdfghjklöä", "zxcvbnm,.@-")


def paint(widget: Widget, rgba: Sequence[float]) -> None:
    """A solid background that follows the widget's size."""
    with widget.canvas.before:
        Color(*rgba)
        rect = Rectangle(pos=widget.pos, size=widget.size)

    def follow(*_: Any) -> None:
        rect.pos, rect.size = widget.pos, widget.size

    widget.bind(pos=follow, size=follow)


def text(value: str, size: float, colour: Sequence[float] = INK, bold: bool = False, **kw: Any) -> Label:
    """A label that wraps inside its box and keeps its text centred."""
    label = Label(text=value, font_size=size, color=colour, bold=bold, halign=kw.pop("halign", "center"),
                  valign="middle", **kw)
    label.bind(size=lambda w, s: setattr(w, "text_size", s))
    return label


def button(value: str, size: float, on_press: Callable[[], object], colour: Sequence[float] = BLUE,
           cls: type[Button] = Button, **kw: Any) -> Button:
    b = cls(text=value, font_size=size, background_normal="", background_color=colour, color=(1, 1, 1, 1),
            halign="center", valign="middle", **kw)
    b.bind(size=lambda w, s: setattr(w, "text_size", (s[0] - 8, s[1])))
    b.bind(on_release=lambda *_: on_press())
    return b


class KioskScreen(FloatLayout):
    """One step; ``unit`` is a font unit that scales with the window (designed at 480 px high)."""

    step: Step = Step.RATING
    background: Sequence[float] = PAPER

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.name = self.step.value
        paint(self, self.background)
        self.unit = 1.0

    def build(self, flow: KioskFlow) -> None:
        from kivy.core.window import Window

        self.clear_widgets()
        self.unit = max(Window.height, 240) / 480
        self.add_widget(self.layout(flow))

    def update(self, flow: KioskFlow) -> None:
        """A small change (typing, the next outcome): rebuild unless a screen knows better."""
        self.build(flow)

    def layout(self, flow: KioskFlow) -> Widget:
        raise NotImplementedError

    def u(self, size: float) -> float:
        return size * self.unit


class RatingScreen(KioskScreen):
    step = Step.RATING

    def layout(self, flow: KioskFlow) -> Widget:
        box = BoxLayout(orientation="vertical", padding=self.u(16), spacing=self.u(10))
        top = BoxLayout(size_hint_y=0.22, spacing=self.u(10))
        top.add_widget(text(flow.question(), self.u(32), bold=True))
        languages = flow.config.survey.languages
        if len(languages) > 1:
            following = languages[(list(languages).index(flow.lang) + 1) % len(languages)] \
                if flow.lang in languages else languages[0]
            top.add_widget(button(language_name(following), self.u(20), flow.toggle_language,
                                  colour=GREY, size_hint=(0.2, 0.7), pos_hint={"center_y": 0.5}))
        box.add_widget(top)
        scale = get_scale(flow.config.survey.scale)
        box.add_widget(self._nps(flow) if scale.name == "nps" else self._faces(flow))
        outcome = flow.outcome_text()
        banner = BoxLayout(orientation="vertical", size_hint_y=0.22, padding=self.u(8),
                           opacity=1 if outcome else 0)
        if outcome:
            paint(banner, (0.9, 0.94, 0.98, 1))
            banner.add_widget(text(flow.t(N_("You said, we did")), self.u(16), BLUE, bold=True, size_hint_y=0.35))
            banner.add_widget(text(outcome, self.u(18)))
        box.add_widget(banner)
        return box

    def _faces(self, flow: KioskFlow) -> Widget:
        scale = get_scale(flow.config.survey.scale)
        words = SCALE_WORDS.get(scale.name, ())
        row = BoxLayout(size_hint_y=0.56, spacing=self.u(14))
        for i, (value, mood) in enumerate(zip(scale.values, moods(len(scale.values)), strict=True)):
            column = BoxLayout(orientation="vertical", spacing=self.u(4))
            face = Face(mood=mood, value=value, colour=mood_colour(mood))
            face.bind(on_release=lambda f: flow.tap(int(f.value)))
            column.add_widget(face)
            column.add_widget(text(mood_symbol(mood), self.u(22), bold=True, size_hint_y=0.16))
            if i < len(words):
                column.add_widget(text(flow.t(words[i]), self.u(15), size_hint_y=0.16))
            row.add_widget(column)
        return row

    def _nps(self, flow: KioskFlow) -> Widget:
        scale = get_scale("nps")
        box = BoxLayout(orientation="vertical", size_hint_y=0.56, spacing=self.u(6))
        grid = GridLayout(rows=1, spacing=self.u(5))
        for value in scale.values:
            mood = -1.0 if value <= scale.negative_max else 0.0 if value < scale.positive_min else 1.0
            b = button(str(value), self.u(30), partial(flow.tap, value), colour=mood_colour(mood))
            if mood == 0.0:
                b.color = INK  # dark on yellow reads better
            grid.add_widget(b)
        box.add_widget(grid)
        anchors = BoxLayout(size_hint_y=0.3)
        anchors.add_widget(text(flow.t(NPS_LOW), self.u(15), halign="left"))
        anchors.add_widget(text(flow.t(NPS_HIGH), self.u(15), halign="right"))
        box.add_widget(anchors)
        return box


class ReasonScreen(KioskScreen):
    step = Step.REASON

    def layout(self, flow: KioskFlow) -> Widget:
        negative = flow.rating is not None and flow.rating.sentiment == "negative"
        box = BoxLayout(orientation="vertical", padding=self.u(16), spacing=self.u(12))
        title = N_("What went wrong?") if negative else N_("What did you like?")
        box.add_widget(text(flow.t(title), self.u(32), bold=True, size_hint_y=0.2))
        reasons = flow.reasons()
        grid = GridLayout(cols=3 if len(reasons) > 4 else 2, spacing=self.u(12), size_hint_y=0.62)
        for reason in reasons:
            grid.add_widget(button(flow.t(reason_label(reason)), self.u(24),
                                   partial(flow.choose_reason, reason)))
        box.add_widget(grid)
        box.add_widget(button(flow.t(N_("Skip")), self.u(22), flow.skip, colour=GREY, size_hint=(0.3, 0.18),
                              pos_hint={"right": 1}))
        return box


class DetailsScreen(KioskScreen):
    """The optional comment and the opt-in contact, typed on an on-screen keyboard."""

    step = Step.DETAILS

    def layout(self, flow: KioskFlow) -> Widget:
        box = BoxLayout(orientation="vertical", padding=self.u(10), spacing=self.u(6))
        box.add_widget(text(flow.t(N_("Anything you want to add?")), self.u(24), bold=True, size_hint_y=0.09))
        self.comment = button("", self.u(18), lambda: flow.focus("comment"), colour=(1, 1, 1, 1),
                              size_hint_y=0.14)
        box.add_widget(self.comment)
        self.consent = None
        self.contact = None
        if flow.config.survey.ask_contact:
            row = BoxLayout(size_hint_y=0.11, spacing=self.u(8))
            self.consent = button(flow.t(N_("You may contact me")), self.u(16),
                                  lambda: flow.set_consent(self.consent is not None and self.consent.state == "down"),
                                  colour=GREY, cls=ToggleButton, size_hint_x=0.4, background_down="")
            row.add_widget(self.consent)
            self.contact = button("", self.u(18), lambda: flow.focus("contact"), colour=(1, 1, 1, 1))
            row.add_widget(self.contact)
            box.add_widget(row)
            box.add_widget(text(flow.t(N_("We use your phone number or e-mail only to answer you about this, "
                                          "and delete it afterwards.")), self.u(12), GREY, size_hint_y=0.06))
        self.notice = text("", self.u(14), WARN, size_hint_y=0.05)
        box.add_widget(self.notice)
        keys = GridLayout(cols=11, spacing=self.u(3), size_hint_y=0.4)
        for row_keys in KEY_ROWS:
            for key in row_keys.ljust(11):
                if key == " ":
                    keys.add_widget(Widget())
                else:
                    keys.add_widget(button(key, self.u(20), partial(flow.type_text, key), colour=KEY))
        box.add_widget(keys)
        bottom = BoxLayout(size_hint_y=0.13, spacing=self.u(6))
        bottom.add_widget(button(flow.t(N_("Skip")), self.u(20), flow.skip, colour=GREY))
        bottom.add_widget(button(flow.t(N_("Space")), self.u(18), lambda: flow.type_text(" "),
                                 colour=KEY, size_hint_x=1.6))
        bottom.add_widget(button(flow.t(N_("Delete")), self.u(18), flow.backspace, colour=KEY))
        bottom.add_widget(button(flow.t(N_("Send")), self.u(20), flow.send_details, colour=GREEN))
        box.add_widget(bottom)
        self._fill(flow)
        return box

    def update(self, flow: KioskFlow) -> None:
        if not self.children:
            self.build(flow)
        else:
            self._fill(flow)

    def _fill(self, flow: KioskFlow) -> None:
        def field(widget: Button, value: str, placeholder: str, active: bool) -> None:
            widget.text = (value[-120:] + ("|" if active else "")) if value else flow.t(placeholder)
            widget.color = INK if value else GREY
            widget.background_color = (1, 1, 0.85, 1) if active else (1, 1, 1, 1)

        field(self.comment, flow.comment, N_("Write a comment (optional)"), flow.field == "comment")
        if self.contact is not None and self.consent is not None:
            self.consent.state = "down" if flow.consent else "normal"
            self.consent.background_color = GREEN if flow.consent else GREY
            field(self.contact, flow.contact, N_("Phone or e-mail"), flow.field == "contact")
        self.notice.text = flow.t(flow.notice) if flow.notice else ""


class ThanksScreen(KioskScreen):
    step = Step.THANKS
    background = (0.13, 0.55, 0.29, 1)

    def layout(self, flow: KioskFlow) -> Widget:
        box = BoxLayout(orientation="vertical", padding=self.u(30))
        box.add_widget(text(flow.t(N_("Thank you!")), self.u(60), (1, 1, 1, 1), bold=True))
        box.add_widget(text(flow.t(N_("Your answer helps us do better.")), self.u(26), (1, 1, 1, 1)))
        return box


class SleepScreen(KioskScreen):
    """Outside opening hours: dark and quiet; touches record nothing."""

    step = Step.SLEEP
    background = (0.02, 0.02, 0.03, 1)

    def layout(self, flow: KioskFlow) -> Widget:
        box = BoxLayout(orientation="vertical", padding=self.u(40))
        dim = (0.35, 0.35, 0.38, 1)
        box.add_widget(text(flow.t(N_("We are closed")), self.u(30), dim))
        opens = flow.opens_at()
        box.add_widget(text(flow.t(N_("Opens again {time}")).format(time=opens) if opens else "",
                            self.u(20), dim))
        return box


class OutOfOrderScreen(KioskScreen):
    step = Step.OUT_OF_ORDER
    background = (0.25, 0.27, 0.3, 1)

    def layout(self, flow: KioskFlow) -> Widget:
        box = BoxLayout(orientation="vertical", padding=self.u(40))
        box.add_widget(text(flow.t(N_("Out of order")), self.u(44), (1, 1, 1, 1), bold=True))
        box.add_widget(text(flow.t(N_("Sorry, this kiosk cannot take answers right now. "
                                      "Please tell a member of staff.")), self.u(22), (1, 1, 1, 1)))
        return box


class PinScreen(KioskScreen):
    step = Step.PIN

    def layout(self, flow: KioskFlow) -> Widget:
        box = BoxLayout(orientation="vertical", padding=self.u(14), spacing=self.u(6))
        box.add_widget(text(flow.t(N_("Staff PIN")), self.u(26), bold=True, size_hint_y=0.12))
        self.entry = text("", self.u(30), size_hint_y=0.12)
        self.notice = text("", self.u(16), WARN, size_hint_y=0.08)
        box.add_widget(self.entry)
        box.add_widget(self.notice)
        pad = GridLayout(cols=3, spacing=self.u(6), size_hint=(0.6, 0.56), pos_hint={"center_x": 0.5})
        for key in "123456789":
            pad.add_widget(button(key, self.u(28), partial(flow.pin_key, key)))
        pad.add_widget(button(flow.t(N_("Delete")), self.u(18), flow.pin_backspace, colour=GREY))
        pad.add_widget(button("0", self.u(28), lambda: flow.pin_key("0")))
        pad.add_widget(button("OK", self.u(24), flow.pin_submit, colour=GREEN))
        box.add_widget(pad)
        box.add_widget(button(flow.t(N_("Cancel")), self.u(18), flow.leave_staff, colour=GREY,
                              size_hint=(0.3, 0.12), pos_hint={"center_x": 0.5}))
        self._fill(flow)
        return box

    def update(self, flow: KioskFlow) -> None:
        if not self.children:
            self.build(flow)
        else:
            self._fill(flow)

    def _fill(self, flow: KioskFlow) -> None:
        self.entry.text = " ".join("*" * len(flow.pin_entry))
        self.notice.text = flow.pin_notice()


class StaffScreen(KioskScreen):
    step = Step.STAFF

    def layout(self, flow: KioskFlow) -> Widget:
        box = BoxLayout(orientation="vertical", padding=self.u(12), spacing=self.u(6))
        box.add_widget(text(flow.t(N_("Staff mode")), self.u(24), bold=True, size_hint_y=0.1))
        grid = GridLayout(cols=2, size_hint_y=0.66, spacing=(self.u(10), self.u(2)))
        for line in flow.status():
            grid.add_widget(text(flow.t(line.label), self.u(15), bold=True, halign="right", size_hint_x=0.3))
            grid.add_widget(text(line.value, self.u(14), WARN if line.warn else INK, halign="left"))
        box.add_widget(grid)
        box.add_widget(text(flow.t(flow.notice) if flow.notice else "", self.u(15), BLUE, size_hint_y=0.07))
        buttons = BoxLayout(size_hint_y=0.17, spacing=self.u(8))
        buttons.add_widget(button(flow.t(N_("Test tap")), self.u(18), flow.staff_test_tap))
        buttons.add_widget(button(flow.t(N_("Back to the survey")), self.u(18), flow.leave_staff, colour=GREY))
        buttons.add_widget(button(flow.t(N_("Close the kiosk")), self.u(18), flow.request_exit, colour=WARN))
        box.add_widget(buttons)
        return box


SCREENS: tuple[type[KioskScreen], ...] = (RatingScreen, ReasonScreen, DetailsScreen, ThanksScreen, SleepScreen,
                                          OutOfOrderScreen, PinScreen, StaffScreen)
