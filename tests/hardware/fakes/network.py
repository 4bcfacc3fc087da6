# A fake of MicroPython's `network` module: one Wi-Fi station whose link the scenario turns on and off.
STA_IF = 0


class WLAN:
    reachable = True  # the access point is in range
    rssi = -61
    connects = 0

    def __init__(self, interface=STA_IF):
        self._active = False
        self._up = False

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        if not on:
            self._up = False

    def connect(self, ssid, password):
        WLAN.connects += 1
        self._up = self._active and WLAN.reachable

    def disconnect(self):
        self._up = False

    def isconnected(self):
        return self._up and WLAN.reachable

    def status(self, what=None):
        if what == "rssi":
            return WLAN.rssi
        return 3 if self.isconnected() else 0
