"""What the kiosk does, without drawing anything: the visitor's steps, timers, staff mode.

The Kivy app only draws :class:`KioskFlow` and forwards touches to it, so every rule here (idle
reset, opening hours, config reload, PIN lockout, the out-of-order screen) runs on an injectable
clock and is tested without a window. All of it runs on the UI thread: a tap is one SQLite
transaction through :class:`device.Recorder` (milliseconds); network work stays in the sync agent.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from device.clock import Clock, SystemClock
from device.config import DeviceConfig, central_overlay_path, load_config
from device.errors import ConfigError, InvalidRating, StoreError
from device.hours import is_open, next_change
from device.model import Rating
from device.recorder import MAX_COMMENT, MAX_CONTACT, Recorder
from device.store import DeviceStore
from kiosk_ui.errors import PinError
from kiosk_ui.i18n import N_, SOURCE_LANGUAGE, translations
from kiosk_ui.pin import verify_pin
from kiosk_ui.status import StatusLine, disk_free_mb, staff_status

log = logging.getLogger(__name__)

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]{2,}$")
PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{5,19}$")
STAFF_TEST_COMMENT = "staff test tap"
MAX_CHIPS = 6  # more reasons than this is too many questions, and too small to tap
# Below this the next write will fail anyway: say so before a visitor is thanked for nothing.
MIN_FREE_MB = 1.0


class Step(StrEnum):
    RATING = "rating"
    REASON = "reason"
    DETAILS = "details"
    THANKS = "thanks"
    SLEEP = "sleep"
    OUT_OF_ORDER = "out_of_order"
    PIN = "pin"
    STAFF = "staff"


# Steps a visitor or staff member is in the middle of: the idle reset applies, config waits.
ENGAGED = {Step.REASON, Step.DETAILS, Step.PIN, Step.STAFF}


@dataclass(frozen=True)
class Timings:
    """Seconds (and counts) the kiosk runs by; the survey's own ``idle_reset`` comes from the config."""

    thanks: float = 4.0  # the thank-you screen, then back to the start
    config_check: float = 3.0  # at most this often, between visitors, look for a pushed config
    outcomes_refresh: float = 5.0  # re-read "you said, we did" from the store
    outcome_rotate: float = 8.0  # show each outcome this long
    disk_check: float = 10.0
    recover_every: float = 30.0  # out of order: try to reopen the store
    status_refresh: float = 5.0  # staff mode re-reads the backlog and the agent's status
    staff_taps: int = 5  # taps in the top-left corner …
    staff_window: float = 3.0  # … within this many seconds open the PIN pad
    pin_attempts: int = 5  # wrong PINs before the pad locks …
    pin_lockout: float = 60.0  # … for this long


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
        self.pin_entry = ""
        self.outcomes: list[dict[str, object]] = []
        self.outcome_index = 0
        self.exit_requested = False
        now = self.clock.monotonic()
        self._last_touch = now
        self._step_since = now
        self._corner: list[float] = []
        self._pin_failures = 0
        self._pin_locked_until = 0.0
        self._config_stamp = self._stat_config()
        self._next_config = now + self.timings.config_check
        self._next_outcomes = now
        self._next_rotate = now + self.timings.outcome_rotate
        self._next_disk = now
        self._next_recover = now
        self._next_status = now
        try:
            if self.store is None:
                self.store = DeviceStore(config.storage.path)
            self.recorder = Recorder(self.store, config, clock=self.clock)
        except (StoreError, sqlite3.Error) as e:
            self._fail(e)
        else:
            self._warn_config(config)
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
        if not self.outcomes:
            return None
        item = self.outcomes[self.outcome_index % len(self.outcomes)]
        text = item.get("text")
        if isinstance(text, str):
            return text
        if isinstance(text, dict) and text:
            return str(text.get(self.lang) or text.get(SOURCE_LANGUAGE) or next(iter(text.values())))
        return None

    def opens_at(self) -> str | None:
        """When a sleeping kiosk opens again, in the site's local time and the visitor's language."""
        change = next_change(self.config.hours, self.clock.now())
        if change is None:
            return None
        from zoneinfo import ZoneInfo

        from babel.dates import format_datetime

        tz = ZoneInfo(self.config.hours.timezone)
        local = change.astimezone(tz)
        same_day = local.date() == self.clock.now().astimezone(tz).date()
        try:
            return str(format_datetime(local, "HH:mm" if same_day else "EEEE HH:mm", locale=self.lang))
        except ValueError:  # a language Babel does not know
            return local.strftime("%H:%M" if same_day else "%a %H:%M")

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
        except (StoreError, sqlite3.Error) as e:
            self._fail(e)
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
        fields = {k: v for k, v in (("comment", self.comment.strip()), ("contact", contact)) if v}
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
        now = self.clock.monotonic()
        self._corner = [t for t in self._corner if now - t <= self.timings.staff_window] + [now]
        if len(self._corner) < self.timings.staff_taps:
            return
        self._corner.clear()
        if not self.config.staff.pin_hash:
            log.warning("staff gesture seen, but [staff] pin_hash is not set: staff mode is off")
            return
        if self.step not in (Step.PIN, Step.STAFF):
            self.pin_entry = ""
            self.notice = None
            self._go(Step.PIN)

    def pin_key(self, digit: str) -> None:
        if self.step is Step.PIN and digit.isdigit() and len(self.pin_entry) < 12:
            self.pin_entry += digit
            self._changed("text")

    def pin_backspace(self) -> None:
        self.pin_entry = self.pin_entry[:-1]
        self._changed("text")

    def pin_submit(self) -> None:
        if self.step is not Step.PIN:
            return
        entry, self.pin_entry = self.pin_entry, ""
        now = self.clock.monotonic()
        if now < self._pin_locked_until:
            self.notice = N_("Too many wrong PINs. Try again later.")
            self._changed("text")
            return
        try:
            ok = bool(self.config.staff.pin_hash) and verify_pin(entry, self.config.staff.pin_hash or "")
        except PinError as e:
            log.error("staff mode refused: %s", e)
            ok = False
        if ok:
            self._pin_failures = 0
            self.notice = None
            log.info("staff mode opened")
            self._go(Step.STAFF)
            return
        self._pin_failures += 1
        log.warning("wrong staff PIN (%d in a row)", self._pin_failures)
        if self._pin_failures >= self.timings.pin_attempts:
            self._pin_failures = 0
            self._pin_locked_until = now + self.timings.pin_lockout
            self.notice = N_("Too many wrong PINs. Try again later.")
        else:
            self.notice = N_("Wrong PIN")
        self._changed("text")

    def staff_test_tap(self) -> Rating | None:
        """A tap staff make to check the whole path; flagged ``test`` so central keeps it out of alerts and patterns."""
        if self.step is not Step.STAFF or self.recorder is None:
            return None
        middle = self.recorder.scale.values[len(self.recorder.scale.values) // 2]
        try:
            rating = self.recorder.record(middle, comment=STAFF_TEST_COMMENT, test=True)
        except (StoreError, sqlite3.Error) as e:
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
        elif self.step is Step.OUT_OF_ORDER and now >= self._next_recover:
            self._recover()
        elif self.step is Step.STAFF and now >= self._next_status:
            self._next_status = now + self.timings.status_refresh
            self._changed("status")
        if self.step in (Step.RATING, Step.SLEEP):
            self._between_visitors(now)

    def reset(self) -> None:
        """Back to the start for the next visitor: nothing of this visitor stays on screen."""
        self.rating = None
        self.comment = self.contact = self.pin_entry = ""
        self.consent = False
        self.field = "comment"
        self.notice = None
        self.lang = self.default_language
        if self.fault:
            self._go(Step.OUT_OF_ORDER)
            return
        self._settle()

    # --- inside -----------------------------------------------------------------------------------
    def _settle(self) -> None:
        self._go(Step.RATING if is_open(self.config.hours, self.clock.now()) else Step.SLEEP)

    def _between_visitors(self, now: float) -> None:
        if now >= self._next_config:
            self._next_config = now + self.timings.config_check
            self._reload_config()
        if now >= self._next_disk:
            self._next_disk = now + self.timings.disk_check
            free = disk_free_mb(self.config.storage.path)
            if free < MIN_FREE_MB:
                self._fail(StoreError(f"only {free:.1f} MB free for {self.config.storage.path}"))
                return
        wanted = Step.RATING if is_open(self.config.hours, self.clock.now()) else Step.SLEEP
        if wanted is not self.step:
            self.reset()
        if now >= self._next_outcomes:
            self._next_outcomes = now + self.timings.outcomes_refresh
            self._refresh_outcomes()
        if now >= self._next_rotate:
            self._next_rotate = now + self.timings.outcome_rotate
            if len(self.outcomes) > 1:
                self.outcome_index = (self.outcome_index + 1) % len(self.outcomes)
                self._changed("outcome")

    def _refresh_outcomes(self) -> None:
        if self.store is None:
            return
        try:
            items = self.store.outcomes()
        except (StoreError, sqlite3.Error) as e:
            log.warning("cannot read outcomes: %s", e)
            return
        if items != self.outcomes:
            self.outcomes = items
            self.outcome_index = 0
            self._changed("outcome")

    def _stat_config(self) -> tuple[int, ...] | None:
        """The staff file's and central's overlay's (mtime, size): a change in either means reload."""
        if self.config_path is None:
            return None
        stamp: list[int] = []
        for path in (Path(self.config_path), central_overlay_path(self.config_path)):
            try:
                st = path.stat()
            except FileNotFoundError:
                stamp += [0, -1]  # no overlay (yet) is a state too: its removal is a change
                continue
            except OSError:
                return None
            stamp += [st.st_mtime_ns, st.st_size]
        return tuple(stamp)

    def _reload_config(self) -> None:
        """A config push (central's overlay) or a staff edit; take it between visitors, keep the old one if bad."""
        stamp = self._stat_config()
        if stamp is None or stamp == self._config_stamp or self.config_path is None:
            return
        self._config_stamp = stamp
        try:
            new = load_config(self.config_path)
        except ConfigError as e:
            log.error("new config refused, keeping version %s: %s", self.config.version, e)
            return
        self.apply_config(new)

    def apply_config(self, new: DeviceConfig) -> None:
        old_path = self.config.storage.path
        self.config = new
        try:
            if self.store is None or new.storage.path != old_path:
                if self.store is not None:
                    self.store.close()
                self.store = DeviceStore(new.storage.path)
            self.recorder = Recorder(self.store, new, clock=self.clock)
        except (StoreError, sqlite3.Error) as e:
            self._fail(e)
            return
        log.info("config version %s in force", new.version)
        self._warn_config(new)
        self.lang = self.default_language
        self._changed("config")

    @staticmethod
    def _warn_config(config: DeviceConfig) -> None:
        for key in ("reasons_negative", "reasons_positive"):
            reasons = getattr(config.survey, key)
            if len(reasons) > MAX_CHIPS:
                log.warning("survey.%s has %d reasons; the kiosk shows the first %d: %s", key, len(reasons),
                            MAX_CHIPS, ", ".join(reasons[:MAX_CHIPS]))

    def _amend(self, **fields: str) -> bool:
        assert self.recorder is not None and self.rating is not None
        try:
            self.rating = self.recorder.amend(self.rating.id, **fields)
        except InvalidRating:
            log.exception("follow-up refused by the Recorder")
            return False
        except (StoreError, sqlite3.Error) as e:
            self._fail(e)
            return False
        return True

    def _fail(self, error: Exception) -> None:
        """The device cannot record: say so on screen instead of thanking the visitor, and log it."""
        log.error("kiosk out of order, cannot record: %s", error)
        self.fault = str(error)
        self.rating = None
        self._next_recover = self.clock.monotonic() + self.timings.recover_every
        self._go(Step.OUT_OF_ORDER)

    def _recover(self) -> None:
        self._next_recover = self.clock.monotonic() + self.timings.recover_every
        try:
            if disk_free_mb(self.config.storage.path) < MIN_FREE_MB:
                raise StoreError(f"still no space for {self.config.storage.path}")
            store = DeviceStore(self.config.storage.path)
            check = store.integrity_check()
            if check != "ok":
                store.close()
                raise StoreError(f"integrity check of {self.config.storage.path}: {check}")
            recorder = Recorder(store, self.config, clock=self.clock)
        except (StoreError, sqlite3.Error) as e:
            log.warning("still out of order: %s", e)
            return
        old, self.store, self.recorder = self.store, store, recorder
        if old is not None:
            with contextlib.suppress(sqlite3.Error):
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
