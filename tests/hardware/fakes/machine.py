# A fake of MicroPython's `machine` module for running firmware on a host MicroPython:
# pins are levels in a table the test scenario sets, as a finger on a button would.
class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    levels = {}

    def __init__(self, n, mode=IN, pull=None):
        self.n = n
        if n not in Pin.levels:
            Pin.levels[n] = 1 if pull == Pin.PULL_UP else 0

    def value(self, v=None):
        if v is None:
            return Pin.levels[self.n]
        Pin.levels[self.n] = 1 if v else 0
