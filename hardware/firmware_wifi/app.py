# ruff: noqa: SIM105  (MicroPython has no contextlib: try/except/pass it is)
# The panel: four debounced buttons -> the journal -> a thank-you, within opening hours; when to sleep.
# Runs unchanged on MicroPython and CPython: pins, the clock, the journal and the uplink are passed in.
try:
    import ujson as json
except ImportError:
    import json

SCALE_MAX = {"smiley4": 4, "smiley5": 5, "nps": 10, "csat5": 5}


class Debouncer:
    """One button. A press counts once the pin has read pressed for ``debounce_ms`` without a break (chatter
    restarts the wait); it must then read released for ``debounce_ms`` before the next press can count, so a
    bouncing release or a long hold is still one press."""

    def __init__(self, pin, value, debounce_ms=30, pressed_level=0):
        self.pin, self.value, self.debounce_ms, self.pressed_level = pin, value, debounce_ms, pressed_level
        self._since = None  # ticks when the pin last changed to the level we wait to see held
        self._down = False  # the debounced state

    def poll(self, now, ticks_diff):
        """True exactly once per press."""
        raw = self.pin.value() == self.pressed_level
        if raw == self._down:
            self._since = None
            return False
        if self._since is None:
            self._since = now
            return False
        if ticks_diff(now, self._since) < self.debounce_ms:
            return False
        self._down, self._since = raw, None
        return raw


def new_id(randbytes):
    """A random (version 4) UUID, as central expects for a rating's id."""
    b = bytearray(randbytes(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = "".join(f"{x:02x}" for x in b)
    return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]


class Panel:
    def __init__(self, buttons, journal, clock, hours, randbytes, *, response_interval_ms=3000, debounce_ms=30,
                 led_ok=None, led_error=None, buzzer=None, thanks_ms=600, scale="smiley4", config_file=None):
        self.buttons = [Debouncer(pin, value, debounce_ms) for pin, value in buttons]
        self.journal, self.clock, self.hours, self.randbytes = journal, clock, hours, randbytes
        self.response_interval_ms = response_interval_ms
        self.led_ok, self.led_error, self.buzzer, self.thanks_ms = led_ok, led_error, buzzer, thanks_ms
        self.scale = scale
        self.config_file = config_file
        self.config_version = 0
        self.closed_presses = 0  # presses outside opening hours (not recorded, as on the kiosk)
        self._last_mono = None
        self._thanks_until = None
        self._load_config()

    # --- presses -------------------------------------------------------------------------------------------
    def step(self):
        """Read the buttons; the presses recorded in this step (Press objects)."""
        ticks = self.clock.ticks
        now = ticks.ticks_ms()
        recorded = []
        for b in self.buttons:
            if b.poll(now, ticks.ticks_diff):
                p = self.press(b.value)
                if p is not None:
                    recorded.append(p)
        if self._thanks_until is not None and ticks.ticks_diff(now, self._thanks_until) >= 0:
            self._thanks_until = None
            self._show(ok=0)
        return recorded

    def press(self, value):
        """A debounced press of ``value``: recorded (and thanked) if open and the journal has room."""
        wall = self.clock.now_ms()
        if self.clock.synced and not self.hours.is_open(wall):
            self.closed_presses += 1
            return None
        mono = self.clock.mono_ms()
        repeat = self._last_mono is not None and 0 <= mono - self._last_mono < self.response_interval_ms
        p = self.journal.add(value, wall, self.clock.boot, mono, "repeat" if repeat else "", new_id(self.randbytes))
        if p is None:  # journal full: refused, no thank-you for a press that was not kept
            self._show(error=1)
            return None
        self._last_mono = mono
        self._thanks_until = self.clock.ticks.ticks_ms() + self.thanks_ms
        self._show(ok=1, error=0)
        return p

    def _show(self, ok=None, error=None):
        if ok is not None:
            if self.led_ok is not None:
                self.led_ok.value(ok)
            if self.buzzer is not None:
                self.buzzer.value(ok)
        if error is not None and self.led_error is not None:
            self.led_error.value(error)

    def is_open(self):
        return not self.clock.synced or self.hours.is_open(self.clock.now_ms())

    def busy(self):
        """A button is mid-debounce or the thank-you is showing: stay awake."""
        return self._thanks_until is not None or any(b._since is not None or b._down for b in self.buttons)

    # --- central's config push -----------------------------------------------------------------------------
    def apply_config(self, version, tables, save=True):
        """(state, reason) as the status reports it; a rejected push changes nothing."""
        if version < self.config_version:
            return "rejected", f"config push version {version} is older than {self.config_version} in force"
        if version == self.config_version:
            return "unchanged", None
        survey = tables.get("survey") or {}
        interval = survey.get("response_interval")
        if interval is not None and (not isinstance(interval, (int, float)) or not 0 <= interval <= 3600):
            return "rejected", f"config push version {version}: survey.response_interval: must be 0-3600 seconds"
        try:
            if "hours" in tables:
                self.hours.set(tables["hours"])
        except ValueError as e:
            return "rejected", f"config push version {version}: {e}"
        if interval is not None:
            self.response_interval_ms = int(interval * 1000)
        self.config_version = version
        if save and self.config_file is not None:
            tmp = self.config_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(json.dumps({"version": version, "config": tables}))
            import os
            try:
                os.remove(self.config_file)
            except OSError:
                pass
            os.rename(tmp, self.config_file)
        return "applied", None

    def _load_config(self):
        if self.config_file is None:
            return
        try:
            with open(self.config_file) as f:
                saved = json.loads(f.read())
            self.apply_config(saved["version"], saved["config"], save=False)
        except (OSError, ValueError, KeyError, TypeError):
            pass

    def status_fields(self):
        return {"config_version": self.config_version, "closed_presses": self.closed_presses,
                "refused": self.journal.refused, "torn_records": self.journal.torn, "open": self.is_open()}

    # --- power ---------------------------------------------------------------------------------------------
    def sleep_plan(self, uplink_settled):
        """("awake", 0) | ("light", ms) | ("deep", ms or None): what the board may do until the next step."""
        if self.busy() or not uplink_settled:
            return "awake", 0
        if self.clock.synced and not self.is_open():
            change = self.hours.next_change_ms(self.clock.now_ms())
            return "deep", None if change is None else change - self.clock.now_ms()
        return "light", 0  # until a button wakes the board (or the heartbeat timer, set by main)
