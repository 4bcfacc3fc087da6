# Delivery: Wi-Fi + MQTT, the journal's presses to central, deleted only on central's receipt.
#
# Runs unchanged on MicroPython and CPython: the socket module, the Wi-Fi interface, the tick functions and
# the random source are passed in. Nothing here blocks longer than the MQTT timeout; a failure of any kind
# closes the link and schedules the next attempt after a full-jitter exponential backoff (never a busy loop).
import message
from mqtt import MQTTClient, MQTTError


class Ticks:
    """MicroPython's tick functions for a port that has them (time.ticks_ms); CPython passes its own."""

    def __init__(self, time_module):
        self.ticks_ms = time_module.ticks_ms
        self.ticks_diff = time_module.ticks_diff


class Clock:
    """Wall time (RTC, corrected by NTP when it answers) and a monotonic count that survives tick wrap-round.

    Without NTP the wall time may be anything (a board's RTC starts in 2000 or 2021): every press still carries
    the boot id and its monotonic ms, and each message the `sent` stamp, from which central repairs `ts`."""

    def __init__(self, ticks, rtc_ms, boot):
        self.ticks, self.rtc_ms, self.boot = ticks, rtc_ms, boot
        self.offset_ms = 0
        self.synced = False
        self._last = ticks.ticks_ms()
        self._mono = 0

    def mono_ms(self):
        now = self.ticks.ticks_ms()
        self._mono += max(0, self.ticks.ticks_diff(now, self._last))
        self._last = now
        return self._mono

    def now_ms(self):
        return self.rtc_ms() + self.offset_ms

    def sync(self, ntp_ms):
        """``ntp_ms()``: the time from NTP in ms since 1970, or an exception; False if it did not answer."""
        try:
            self.offset_ms = int(ntp_ms()) - self.rtc_ms()
            self.synced = True
            return True
        except Exception:
            return False


class Uplink:
    def __init__(self, settings, journal, clock, socket_module, wifi, rand, *, status_fields, on_config,
                 ntp_ms=None, on_published=None, batch_size=20, ack_timeout_ms=15000, backoff_min_ms=500,
                 backoff_max_ms=60000, heartbeat_ms=300000, keepalive=60, timeout=5.0, version="0.0.0"):
        self.s = settings  # device, site, location, scale, host, port, username, password
        self.journal = journal
        self.clock = clock
        self.wifi = wifi
        self.rand = rand  # rand(n): a whole number 0 <= x < n
        self.status_fields = status_fields
        self.on_config = on_config  # (version, tables) -> (state, reason)
        self.ntp_ms = ntp_ms
        self.on_published = on_published
        self.batch_size, self.ack_timeout_ms, self.heartbeat_ms = batch_size, ack_timeout_ms, heartbeat_ms
        self.backoff_min_ms, self.backoff_max_ms = backoff_min_ms, backoff_max_ms
        self.version = version
        self.t = {kind: message.topic(settings["site"], settings["device"], kind)
                  for kind in ("ratings", "ack", "status", "config")}
        self.client = MQTTClient(settings["device"] + "-" + clock.boot, settings["host"], settings.get("port", 1883),
                                 socket_module, clock.ticks, settings.get("username"), settings.get("password"),
                                 keepalive, timeout)
        self.client.set_last_will(self.t["status"], self._status_payload("offline"), retain=True, qos=1)
        self.client.on_message = self._message
        self.client.on_error = self._error
        self.up = False
        self.failures = 0
        self.reconnects = 0
        self.next_try = clock.ticks.ticks_ms()
        self.in_flight = None  # (ids, ticks sent) of the batch waiting for its receipt
        self.last_error = None
        self.rejected = 0
        self.config_report = None
        self._status_due = True
        self._last_status = 0

    # --- status and messages -------------------------------------------------------------------------------
    def _status_payload(self, state):
        fields = {"state": state, "device": self.s["device"], "site": self.s["site"],
                  "location": self.s.get("location"), "kind": "panel", "version": self.version,
                  "boot": self.clock.boot}
        if state == "online":
            fields.update(self.status_fields())
            fields.update({"ts": message.iso(self.clock.now_ms()), "backlog": len(self.journal.pending),
                           "boot_uptime": self.clock.mono_ms() / 1000, "reconnects": self.reconnects,
                           "rssi": self.wifi.rssi(), "rejected": self.rejected, "clock_synced": self.clock.synced,
                           "config": self.config_report, "last_error": self.last_error})
        return message.status(fields)

    def _error(self, text):
        self.last_error = text

    def _message(self, topic, payload, retained):
        if topic == self.t["ack"]:
            try:
                ids, rejected, _ = message.receipt(payload)
            except ValueError as e:
                self._error("receipt: " + str(e))
                return
            self.journal.remove(ids)
            if not self.journal.pending:
                self._status_due = True  # the retained status shows the journal empty again
            if rejected:
                self.rejected += len(rejected)
                self._error("central rejected " + str(rejected[0][0]) + ": " + str(rejected[0][1]))
            if self.in_flight is not None and not any(p.id in self.in_flight[0] for p in self.journal.pending):
                self.in_flight = None  # the whole batch is receipted: the next one may go at once
        elif topic == self.t["config"]:
            try:
                push = message.config_push(payload)
            except ValueError as e:
                self.config_report = {"version": None, "state": "rejected", "reason": str(e)}
                self._status_due = True
                return
            if push is not None:
                state, reason = self.on_config(*push)
                self.config_report = {"version": push[0], "state": state, "reason": reason}
                self._status_due = True

    # --- the link ------------------------------------------------------------------------------------------
    def _connect(self):
        if not self.wifi.connect():
            raise OSError("no Wi-Fi")
        if not self.clock.synced and self.ntp_ms is not None:
            self.clock.sync(self.ntp_ms)
        self.client.connect(clean=True)
        self.client.subscribe(self.t["ack"], 1)
        self.client.subscribe(self.t["config"], 1)
        self.up = True
        self.in_flight = None  # a receipt sent while we were away is lost with the old session: send again
        self._status_due = True

    def _drop(self, reason):
        self.client.close()
        if self.up:
            self.reconnects += 1
        self.up = False
        self.in_flight = None
        self.failures += 1
        cap = min(self.backoff_max_ms, self.backoff_min_ms << min(self.failures - 1, 16))
        self.next_try = self.clock.ticks.ticks_ms() + self.rand(cap + 1)  # full jitter
        self.last_error = reason

    def disconnect(self):
        """A clean goodbye (the will is not published): before deep sleep, with the status left as it is."""
        if self.up:
            self.client.disconnect()
        self.up = False

    def step(self, wait_ms=0):
        """One round: connect if it is time, read what arrived, send what is due. Never raises for the link."""
        ticks = self.clock.ticks
        now = ticks.ticks_ms()
        if not self.up:
            if not self.wanted(now) or ticks.ticks_diff(now, self.next_try) < 0:
                return
            try:
                self._connect()
                self.failures = 0
            except Exception as e:  # OSError, MQTTError, or a Wi-Fi driver's own error
                self._drop("connect: " + repr(e))
                return
        try:
            self.client.check_msg(wait_ms / 1000)
            now = ticks.ticks_ms()
            if self.in_flight is not None and ticks.ticks_diff(now, self.in_flight[1]) >= self.ack_timeout_ms:
                self.in_flight = None  # no receipt in time: offer the batch again (central stores it once)
            if self.in_flight is None and self.journal.pending:
                self._send_batch()
            if self._status_due or ticks.ticks_diff(now, self._last_status) >= self.heartbeat_ms:
                self.client.publish(self.t["status"], self._status_payload("online"), retain=True, qos=1)
                self._status_due = False
                self._last_status = now
            elif ticks.ticks_diff(now, self.client.last_rx) >= self.client.keepalive * 500:
                self.client.ping()
            if ticks.ticks_diff(now, self.client.last_rx) > self.client.keepalive * 1500:
                raise MQTTError("no word from the broker for 1.5 keepalives")
        except Exception as e:
            self._drop("link: " + repr(e))

    def _send_batch(self):
        batch = self.journal.batch(self.batch_size)
        sent = (self.clock.now_ms(), self.clock.boot, self.clock.mono_ms())
        payload = message.ratings(self.s["device"], self.s["site"], self.s.get("scale", "smiley4"),
                                  self.s["location"], sent, batch)
        self.client.publish(self.t["ratings"], payload, retain=False, qos=1)
        self.in_flight = ({p.id for p in batch}, self.clock.ticks.ticks_ms())
        if self.on_published is not None:
            self.on_published(batch)

    def wanted(self, now):
        """Is there a reason to bring the radio up: presses to deliver, a status to send, a heartbeat due?"""
        return bool(self.journal.pending) or self._status_due or \
            self.clock.ticks.ticks_diff(now, self._last_status) >= self.heartbeat_ms

    def settled(self):
        """Nothing left to do on the link: every press receipted and the status sent."""
        return self.up and not self.journal.pending and not self._status_due
