# Opening hours on the panel: the device config's [hours] table (docs/PROTOCOL.md "Device config"), in the
# site's time zone. A board has no time-zone database, so the panel knows the zones below (offset from UTC in
# minutes, and the EU summer-time rule where it applies); another zone is read as UTC and says so in the status.
# Runs unchanged on MicroPython and CPython.
from message import civil, days_from_civil

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CET = ("Europe/Stockholm", "Europe/Oslo", "Europe/Copenhagen", "Europe/Berlin", "Europe/Paris",
        "Europe/Amsterdam", "Europe/Brussels", "Europe/Madrid", "Europe/Rome", "Europe/Vienna", "Europe/Zurich",
        "Europe/Warsaw", "Europe/Prague", "Europe/Budapest", "Europe/Luxembourg")
_EET = ("Europe/Helsinki", "Europe/Tallinn", "Europe/Riga", "Europe/Vilnius", "Europe/Athens", "Europe/Sofia",
        "Europe/Bucharest")
_WET = ("Europe/London", "Europe/Dublin", "Europe/Lisbon")
ZONES = {"UTC": (0, False), "Etc/UTC": (0, False), "Atlantic/Reykjavik": (0, False)}
for _z in _CET:
    ZONES[_z] = (60, True)
for _z in _EET:
    ZONES[_z] = (120, True)
for _z in _WET:
    ZONES[_z] = (0, True)


def _last_sunday_ms(year, month):
    """01:00 UTC on the last Sunday of ``month`` (the EU switch moment), in ms since 1970."""
    last = days_from_civil(year, month + 1, 1) - 1 if month < 12 else days_from_civil(year, 12, 31)
    weekday = (last + 3) % 7  # 1970-01-01 was a Thursday (mon = 0)
    return ((last - (weekday + 1) % 7) * 86400 + 3600) * 1000


def _minutes(text):
    return int(text[:2]) * 60 + int(text[3:5])


class Hours:
    def __init__(self, table=None):
        self.problem = None
        self.set(table or {})

    def set(self, table):
        """Take an [hours] table; ValueError (nothing changed) if an entry cannot be read."""
        spans = {}
        for day in DAYS:
            value = table.get(day)
            if value is None:
                continue
            items = [value] if isinstance(value, str) else value
            out = []
            for item in items:
                if item == "closed":
                    continue
                if not isinstance(item, str) or len(item) != 11 or item[5] != "-":
                    raise ValueError("hours." + day + ": " + repr(item) + " must look like '08:00-20:00'")
                try:
                    start, end = _minutes(item[:5]), _minutes(item[6:])
                except ValueError:
                    raise ValueError("hours." + day + ": " + repr(item) + " must look like '08:00-20:00'") from None
                if not 0 <= start < end <= 1440:
                    raise ValueError("hours." + day + ": " + repr(item) + " must start before it ends")
                out.append((start, end))
            spans[day] = out
        zone = table.get("timezone", "UTC")
        self.spans = spans
        self.zone = ZONES.get(zone, (0, False))
        self.problem = None if zone in ZONES else "time zone " + str(zone) + " is unknown to the panel: hours in UTC"

    def offset_min(self, utc_ms):
        base, eu_summer = self.zone
        if eu_summer:
            year = civil(utc_ms // 86400000)[0]
            if _last_sunday_ms(year, 3) <= utc_ms < _last_sunday_ms(year, 10):
                return base + 60
        return base

    def is_open(self, utc_ms):
        """Open at this moment? A day not listed is open all day (as on the kiosk)."""
        local = utc_ms + self.offset_min(utc_ms) * 60000
        days = local // 86400000
        day = DAYS[(days + 3) % 7]
        if day not in self.spans:
            return True
        minute = local // 60000 % 1440
        return any(start <= minute < end for start, end in self.spans[day])

    def next_change_ms(self, utc_ms, limit_min=8 * 24 * 60):
        """When is_open next flips, to the minute (the deep-sleep timer), or None within ``limit_min``."""
        now = self.is_open(utc_ms)
        t = utc_ms - utc_ms % 60000
        for _ in range(limit_min):
            t += 60000
            if self.is_open(t) != now:
                return t
        return None
