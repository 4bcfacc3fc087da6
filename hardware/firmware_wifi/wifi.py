# The Wi-Fi station, over the `network` module (passed in: the board's, or a fake on a PC).
# Runs unchanged on MicroPython and CPython.
class Wifi:
    def __init__(self, network, ssid, password, ticks, timeout_ms=15000, sleep_ms=None):
        self.network, self.ssid, self.password, self.ticks = network, ssid, password, ticks
        self.timeout_ms = timeout_ms
        self.sleep_ms = sleep_ms or (lambda ms: None)
        self.wlan = network.WLAN(network.STA_IF)

    def connect(self):
        """True once associated with an address; False after timeout_ms (the caller backs off)."""
        if self.wlan.isconnected():
            return True
        self.wlan.active(True)
        self.wlan.connect(self.ssid, self.password)
        start = self.ticks.ticks_ms()
        while not self.wlan.isconnected():
            if self.ticks.ticks_diff(self.ticks.ticks_ms(), start) >= self.timeout_ms:
                return False
            self.sleep_ms(50)
        return True

    def rssi(self):
        try:
            return self.wlan.status("rssi")
        except Exception:
            return None

    def off(self):
        """Radio off (before deep sleep, or between presses on a battery)."""
        try:
            self.wlan.disconnect()
            self.wlan.active(False)
        except Exception:
            pass
