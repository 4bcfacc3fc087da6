"""What the kiosk does, without drawing anything: the visitor's steps and the timers that move them.

The Kivy app only draws :class:`KioskFlow` and forwards touches to it, so every rule here (idle
reset, opening hours, the out-of-order screen) runs on an injectable clock and is tested without a
window. The way into staff mode is :mod:`kiosk_ui.staff`; what is looked after between visitors
(config, disk, outcomes, a broken store) is :mod:`kiosk_ui.upkeep`. All of it runs on the UI thread: a
tap is one SQLite transaction through :class:`device.Recorder` (milliseconds); network work stays in the
sync agent.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from device import MAX_COMMENT, MAX_CONTACT, DeviceConfig, DeviceStore, Recorder, StoreError
from kiosk_ui.consent import consent
from kiosk_ui.i18n import N_, SOURCE_LANGUAGE, translations
from kiosk_ui.staff import PinResult, StaffGate, wait_text
from kiosk_ui.status import StatusLine, staff_status
from kiosk_ui.steps import ENGAGED, Step, Timings
from kiosk_ui.texts import opening_time
from kiosk_ui.upkeep import ConfigWatch, Every, Outcomes, disk_short, reopen, warn_config
from smileloop_core.clock import Clock, SystemClock
from smileloop_core.errors import InvalidRating
from smileloop_core.hours import is_open
from smileloop_core.model import Rating

log = logging.getLogger(__name__)

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]{2,}$")
PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{5,19}$")
STAFF_TEST_COMMENT = "staff test tap"
MAX_CHIPS = 6  # more reasons than this is too many questions, and too small to tap
__all__ = ["KioskFlow", "Step", "Timings"]  # Step and Timings live in kiosk_ui.steps; imported here too


class KioskFlow:
    """The kiosk's state for one device; call :meth:`tick` a few times a second and on every touch.

    >>> flow = KioskFlow(load_config("device.toml"))     # doctest: +SKIP
    >>> flow.tap(1); flow.step                           # doctest: +SKIP
    <Step.REASON: 'reason'>
    """

    def __init__(self, config: DeviceConfig, *, store: DeviceStore | None = None, clock: Clock | None = None,
                 timings: Timings | None = None, config_path: Path | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.timings = timings or Timings()
        self.config = config
        self.config_path = config_path if config_path is not None else config.source
        self.store: DeviceStore | None = store
        self.recorder: Recorder | None = None
        self.listeners: list[Callable[[str], None]] = []
        self.step = Step.RATING
        self.lang = self.default_language
        self.rating: Rating | None = None
        self.comment = ""
        self.contact = ""
        self.consent = False
        self.field = "comment"  # which text the on-screen keyboard types into
        self.notice: str | None = None  # a msgid shown on the current step (wrong PIN, bad contact)
        self.fault: str | None = None
        self.exit_requested = False
        t = self.timings
        self.staff = StaffGate(self.clock, t, store=lambda: self.store)
        self.outcomes = Outcomes()
        self._watch = ConfigWatch(self.config_path)
        self._config_timer = Every(self.clock, t.config_check, first=t.config_check)
        self._outcomes_timer = Every(self.clock, t.outcomes_refresh)
        self._rotate_timer = Every(self.clock, t.outcome_rotate, first=t.outcome_rotate)
        self._disk_timer = Every(self.clock, t.disk_check)
        self._recover_timer = Every(self.clock, t.recover_every)
        self._status_timer = Every(self.clock, t.status_refresh)
        self._last_touch = self._step_since = self.clock.monotonic()
        try:
            if self.store is None:
                self.store = DeviceStore(config.storage.path, clock=self.clock)
            self.recorder = Recorder(self.store, config, clock=self.clock)
        except StoreError as e:
            self.fail(e)
        else:
            warn_config(config, MAX_CHIPS)
            self._settle()

    # --- what the screens read ----------------------------------------------------------------
    @property
    def default_language(self) -> str:
        languages = self.config.survey.languages
        return languages[0] if languages else SOURCE_LANGUAGE

    def t(self, message: str) -> str:
        """``message`` in the visitor's current language."""
        return translations(self.lang).gettext(message)

    def question(self) -> str:
        q = self.config.survey.question
        if self.lang in q:
            return q[self.lang]
        return self.t(N_("How was your visit today?")) if SOURCE_LANGUAGE not in q else q[SOURCE_LANGUAGE]

    def reasons(self) -> tuple[str, ...]:
        """The chips for this visitor's tap: at most :data:`MAX_CHIPS`, in the configured order."""
        if self.rating is None:
            return ()
        if self.rating.sentiment == "negative":
            return self.config.survey.reasons_negative[:MAX_CHIPS]
        if self.rating.sentiment == "positive":
            return self.config.survey.reasons_positive[:MAX_CHIPS]
        return ()

    def outcome_text(self) -> str | None:
        """The "you said, we did" item to show now, in the visitor's language (else English, else any)."""
        return self.outcomes.text(self.lang)

    @property
    def pin_entry(self) -> str:
        """The digits typed on the PIN pad so far (the screen shows one star each)."""
        return self.staff.entry

    def pin_notice(self) -> str:
        """What the PIN pad says: how long it stays locked, else the notice (a wrong PIN), in the visitor's language."""
        locked = self.staff.locked_for()
        return wait_text(locked, self.t) if locked > 0 else self.t(self.notice) if self.notice else ""

    def opens_at(self) -> str | None:
        """When a sleeping kiosk opens again, in the site's local time and the visitor's language."""
        return opening_time(self.config.hours, self.clock.now(), self.lang)

    def status(self) -> list[StatusLine]:
        return staff_status(self.config, self.store, self.clock.now(), self.fault)

    # --- the visitor ----------------------------------------------------------------------------
    def touched(self) -> None:
        """Any touch anywhere: the visitor is still here."""
        self._last_touch = self.clock.monotonic()

    def tap(self, value: int) -> None:
        """The first tap: stored at once, and it counts even if the visitor walks away now."""
        if self.step is not Step.RATING or self.recorder is None:
            return
        if not is_open(self.config.hours, self.clock.now()):
            self._go(Step.SLEEP)
            return
        try:
            self.rating = self.recorder.record(value)
        except InvalidRating:
            log.exception("the rating screen offered a value the scale refuses")
            return
        except StoreError as e:
            self.fail(e)
            return
        if self.reasons():
            self._go(Step.REASON)
        elif self.rating.sentiment == "negative":
            self._go(Step.DETAILS)
        else:
            self._go(Step.THANKS)

    def choose_reason(self, reason: str) -> None:
        if self.step is not Step.REASON or self.rating is None:
            return
        if self._amend(reason=reason) and self.step is Step.REASON:
            self._go(Step.DETAILS if self.rating.sentiment == "negative" else Step.THANKS)

    def focus(self, field: str) -> None:
        if field not in ("comment", "contact"):
            raise ValueError(f"no text field {field!r}")
        if field == "contact" and not self.consent:
            self.consent = True
        self.field = field
        self._changed("text")

    def set_consent(self, consent: bool) -> None:
        self.consent = consent
        self.field = "contact" if consent else "comment"
        self.notice = None
        self._changed("text")

    def type_text(self, text: str) -> None:
        """On-screen keyboard input into the focused field, capped at what the Recorder accepts."""
        if self.field == "contact":
            self.contact = (self.contact + text)[:MAX_CONTACT]
        else:
            self.comment = (self.comment + text)[:MAX_COMMENT]
        self._changed("text")

    def backspace(self) -> None:
        if self.field == "contact":
            self.contact = self.contact[:-1]
        else:
            self.comment = self.comment[:-1]
        self._changed("text")

    def send_details(self) -> None:
        """Store the comment, and the contact only with consent; a bad contact is pointed out, nothing lost."""
        if self.step is not Step.DETAILS or self.rating is None:
            return
        contact = self.contact.strip() if self.consent else ""
        if contact and not (EMAIL.match(contact) or PHONE.match(contact)):
            self.notice = N_("Please enter a phone number or an e-mail address.")
            self.field = "contact"
            self._changed("text")
            return
        fields: dict[str, Any] = {k: v for k, v in (("comment", self.comment.strip()), ("contact", contact)) if v}
        if contact:
            fields["consent"] = consent(self.lang, self.clock.now())  # the sentence they read, agreed on sending
        if fields and not self._amend(**fields):
            return
        self._go(Step.THANKS)

    def skip(self) -> None:
        """Every follow-up step can be skipped; the first tap is already stored."""
        if self.step in (Step.REASON, Step.DETAILS):
            self._go(Step.THANKS)

    def toggle_language(self) -> None:
        languages = list(self.config.survey.languages) or [SOURCE_LANGUAGE]
        index = languages.index(self.lang) if self.lang in languages else -1
        self.lang = languages[(index + 1) % len(languages)]
        self._changed("language")

    # --- staff ----------------------------------------------------------------------------------
    def corner_tap(self) -> None:
        """The hidden gesture: several quick taps in the top-left corner open the PIN pad."""
        if not self.staff.corner_tap():
            return
        if not self.config.staff.pin_hash:
            log.warning("staff gesture seen, but [staff] pin_hash is not set: staff mode is off")
            return
        if self.step not in (Step.PIN, Step.STAFF):
            self.staff.clear()
            self.notice = None
            self._go(Step.PIN)

    def pin_key(self, digit: str) -> None:
        if self.step is Step.PIN and self.staff.key(digit):
            self._changed("text")

    def pin_backspace(self) -> None:
        self.staff.backspace()
        self._changed("text")

    def pin_submit(self) -> None:
        if self.step is not Step.PIN:
            return
        result = self.staff.submit(self.config.staff.pin_hash)
        if result is PinResult.OPEN:
            self.notice = None
            log.info("staff mode opened")
            self._go(Step.STAFF)
            return
        self.notice = N_("Wrong PIN") if result is PinResult.WRONG else None  # a lockout is told by pin_notice
        self._changed("text")

    def staff_test_tap(self) -> Rating | None:
        """A tap staff make to check the whole path; flagged ``test`` so central keeps it out of alerts and patterns."""
        if self.step is not Step.STAFF or self.recorder is None:
            return None
        middle = self.recorder.scale.values[len(self.recorder.scale.values) // 2]
        try:
            rating = self.recorder.record(middle, comment=STAFF_TEST_COMMENT, test=True)
        except StoreError as e:
            self.fault = str(e)
            log.error("staff test tap failed: %s", e)
            self._changed("text")
            return None
        self.notice = N_("Test tap stored")
        self._changed("text")
        return rating

    def leave_staff(self) -> None:
        self.reset()

    def request_exit(self) -> None:
        if self.step is Step.STAFF:
            log.info("staff closed the kiosk")
            self.exit_requested = True
            self._changed("exit")

    # --- time -----------------------------------------------------------------------------------
    def tick(self) -> None:
        """Run the timers: thank-you, idle reset, recovery, and between visitors config, hours, outcomes."""
        now = self.clock.monotonic()
        # A visitor who switched language and left without a tap must not leave the next one in it.
        lingering = self.step in ENGAGED or (self.step is Step.RATING and self.lang != self.default_language)
        idle = lingering and now - self._last_touch >= self.config.survey.idle_reset
        thanked = self.step is Step.THANKS and now - self._step_since >= self.timings.thanks
        if idle or thanked:
            self.reset()
        elif self.step is Step.OUT_OF_ORDER and self._recover_timer.due():
            self._recover()
        elif self.step is Step.STAFF and self._status_timer.due():
            self._changed("status")
        elif self.step is Step.PIN and self.notice is None:
            self._changed("text")  # the lockout's countdown (the screen sets only what changed)
        if self.step in (Step.RATING, Step.SLEEP):
            self._between_visitors()

    def reset(self) -> None:
        """Back to the start for the next visitor: nothing of this visitor stays on screen."""
        self.rating = None
        self.comment = self.contact = ""
        self.staff.clear()
        self.consent = False
        self.field = "comment"
        self.notice = None
        self.lang = self.default_language
        if self.fault:
            self._go(Step.OUT_OF_ORDER)
            return
        self._settle()

    def apply_config(self, new: DeviceConfig) -> None:
        """Put ``new`` in force now (the caller makes sure no visitor is mid-way); a new store path is opened."""
        old_path = self.config.storage.path
        self.config = new
        try:
            if self.store is None or new.storage.path != old_path:
                if self.store is not None:
                    self.store.close()
                self.store = DeviceStore(new.storage.path, clock=self.clock)
            self.recorder = Recorder(self.store, new, clock=self.clock)
        except StoreError as e:
            self.fail(e)
            return
        log.info("config version %s in force", new.version)
        warn_config(new, MAX_CHIPS)
        self.lang = self.default_language
        self._changed("config")

    def fail(self, error: Exception) -> None:
        """The device cannot record: say so on screen instead of thanking the visitor, and log it."""
        log.error("kiosk out of order, cannot record: %s", error)
        self.fault = str(error)
        self.rating = None
        self._recover_timer.restart()
        self._go(Step.OUT_OF_ORDER)

    # --- inside -----------------------------------------------------------------------------------
    def _settle(self) -> None:
        self._go(Step.RATING if is_open(self.config.hours, self.clock.now()) else Step.SLEEP)

    def _between_visitors(self) -> None:
        if self._config_timer.due():
            new = self._watch.reload(self.config)
            if new is not None:
                self.apply_config(new)
        if self._disk_timer.due():
            short = disk_short(self.config)
            if short is not None:
                self.fail(short)
                return
        wanted = Step.RATING if is_open(self.config.hours, self.clock.now()) else Step.SLEEP
        if wanted is not self.step:
            self.reset()
        if self._outcomes_timer.due() and self.outcomes.refresh(self.store):
            self._changed("outcome")
        if self._rotate_timer.due() and self.outcomes.rotate():
            self._changed("outcome")

    def _amend(self, **fields: Any) -> bool:
        assert self.recorder is not None and self.rating is not None
        try:
            self.rating = self.recorder.amend(self.rating.id, **fields)
        except InvalidRating:
            log.exception("follow-up refused by the Recorder")
            return False
        except StoreError as e:
            self.fail(e)
            return False
        return True

    def _recover(self) -> None:
        """Out of order: try the store again; back in service once it opens and checks whole."""
        try:
            recorder = reopen(self.config, self.clock)
        except StoreError as e:
            log.warning("still out of order: %s", e)
            return
        old, self.store, self.recorder = self.store, recorder.store, recorder
        if old is not None:
            with contextlib.suppress(StoreError):
                old.close()
        log.info("store usable again; back in service")
        self.fault = None
        self._settle()

    def _go(self, step: Step) -> None:
        self.step = step
        self._step_since = self._last_touch = self.clock.monotonic()
        self._changed("step")

    def _changed(self, what: str) -> None:
        for listener in list(self.listeners):
            listener(what)
