# smileloop button panel firmware: debounced buttons, a flash-backed queue, a line protocol to the host.
#
# Runs unchanged on MicroPython boards (Raspberry Pi Pico, ESP32) and on a host MicroPython for tests:
# nothing here touches hardware directly; pins, the clock and the serial line are passed in.
#
# Protocol (one line each, ASCII, "\n"-terminated; docs/PROTOCOL.md "Button panel"):
#   panel -> host: HELLO <panel_id> <boot> <dropped>   on start
#                  TAP <boot> <n> <value> <age_ms>      a press; n counts up per panel, kept across reboots
#   host -> panel: ACK <boot> <n>                       the host has stored tap n durably
# A tap stays in the queue file until its ACK comes, and is offered again every RESEND_MS.

try:
    import ujson as json
except ImportError:
    import json


class Debouncer:
    """One button: a press counts once its pin has read pressed for debounce_ms, then it must be released."""

    def __init__(self, pin, value, debounce_ms, pressed_level=0):
        self.pin = pin
        self.value = value
        self.debounce_ms = debounce_ms
        self.pressed_level = pressed_level
        self._since = None
        self._latched = False

    def poll(self, now, ticks_diff):
        """True exactly once per press."""
        down = self.pin.value() == self.pressed_level
        if not down:
            self._since = None
            self._latched = False
            return False
        if self._latched:
            return False
        if self._since is None:
            self._since = now
            return False
        if ticks_diff(now, self._since) >= self.debounce_ms:
            self._latched = True
            return True
        return False


class Queue:
    """Unacknowledged taps, in a small file so a power cut loses none of them."""

    def __init__(self, path, limit, fs):
        self.path = path
        self.limit = limit
        self.fs = fs  # the os module (rename); files are opened with the builtin open()
        self.items = []  # [n, value, taken_at_ms]
        self.next_n = 1
        self.dropped = 0
        self._load()

    def _load(self):
        try:
            with open(self.path) as f:
                state = json.loads(f.read())
            self.items = state["items"]
            self.next_n = state["next_n"]
            self.dropped = state.get("dropped", 0)
        except (OSError, ValueError, KeyError):
            pass

    def _save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps({"items": self.items, "next_n": self.next_n, "dropped": self.dropped}))
        self.fs.rename(tmp, self.path)

    def add(self, value, now):
        item = [self.next_n, value, now]
        self.next_n += 1
        self.items.append(item)
        if len(self.items) > self.limit:
            self.items.pop(0)
            self.dropped += 1
        self._save()
        return item

    def ack(self, n):
        before = len(self.items)
        self.items = [i for i in self.items if i[0] != n]
        if len(self.items) != before:
            self._save()
            return True
        return False


class Panel:
    def __init__(self, buttons, write_line, ticks_ms, ticks_diff, fs, boot, panel_id,
                 led_ok=None, led_wait=None, debounce_ms=30, resend_ms=2000,
                 queue_file="taps.q", queue_max=2000):
        # buttons: [(pin, value)]; write_line(str); fs: the os module (for an atomic rename of the queue file)
        self.buttons = [Debouncer(p, v, debounce_ms) for p, v in buttons]
        self.write_line = write_line
        self.ticks_ms = ticks_ms
        self.ticks_diff = ticks_diff
        self.boot = boot
        self.panel_id = panel_id
        self.led_ok = led_ok
        self.led_wait = led_wait
        self.resend_ms = resend_ms
        self.queue = Queue(queue_file, queue_max, fs)
        self._offered = {}  # n -> ticks when last offered to the host
        self._ok_until = None
        self.write_line("HELLO %s %s %d" % (panel_id, boot, self.queue.dropped))

    def step(self):
        """Call every few milliseconds: read buttons, offer taps, drive the LEDs."""
        now = self.ticks_ms()
        for b in self.buttons:
            if b.poll(now, self.ticks_diff):
                self.queue.add(b.value, now)
                self._ok_until = now + 600
        for n, value, taken in self.queue.items:
            last = self._offered.get(n)
            if last is None or self.ticks_diff(now, last) >= self.resend_ms:
                self.write_line("TAP %s %d %d %d" % (self.boot, n, value, self.ticks_diff(now, taken)))
                self._offered[n] = now
        if self.led_ok is not None:
            self.led_ok.value(1 if self._ok_until is not None and self.ticks_diff(self._ok_until, now) > 0 else 0)
        if self.led_wait is not None:
            self.led_wait.value(1 if self.queue.items else 0)

    def on_line(self, line):
        """A line from the host. Unknown lines are ignored: the host may be newer than the panel."""
        parts = line.strip().split()
        if len(parts) == 3 and parts[0] == "ACK" and parts[1] == self.boot:
            try:
                n = int(parts[2])
            except ValueError:
                return
            self.queue.ack(n)
            self._offered.pop(n, None)
