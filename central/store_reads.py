"""What the rules read from central's store: counts of the ratings in a window, the latest taps of a device,
the day's negative reasons, the places and devices active lately, and the devices' latest status.

Repeat presses and staff test taps are kept but are not visitors: the pattern reads leave them out (the
misuse rules, which look for exactly those, do not).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, cast

from central.records import DeviceStatus, RatingGroup, ReasonCount, Tap
from smileloop_core.clock import parse_utc, utc_iso

if TYPE_CHECKING:
    from central.db import Database

NOT_REPEAT = "(flags IS NULL OR (flags NOT LIKE '%\"repeat\"%' AND flags NOT LIKE '%\"test\"%'))"


class ReadStore:
    """Mixed into :class:`central.store.CentralStore`; needs its ``db``."""

    db: Database

    # --- windows of visitors' ratings -----------------------------------------------------------
    def rating_groups(self, site: str, since: datetime, until: datetime, *,
                      location: str | None = None) -> list[RatingGroup]:
        """The ratings made in ``[since, until]`` at a site (or one location), counted per scale, value,
        sentiment and reason."""
        sql = ("SELECT scale, value, sentiment, reason, count(*) AS n FROM ratings WHERE site = ? AND ts >= ? "
               f"AND ts <= ? AND {NOT_REPEAT}")
        params: list[str] = [site, utc_iso(since), utc_iso(until)]
        if location is not None:
            sql += " AND location = ?"
            params.append(location)
        rows = self.db.query(sql + " GROUP BY scale, value, sentiment, reason", params)
        return [RatingGroup(r["scale"], int(r["value"]), r["sentiment"], r["reason"], int(r["n"])) for r in rows]

    def recent_sentiments(self, site: str, location: str, until: datetime, n: int) -> list[str]:
        """The sentiments of the last ``n`` ratings at a location up to ``until``, newest first."""
        rows = self.db.query("SELECT sentiment FROM ratings WHERE site = ? AND location = ? AND ts <= ? "
                             f"AND {NOT_REPEAT} ORDER BY ts DESC, seq DESC LIMIT ?",
                             (site, location, utc_iso(until), n))
        return [str(r["sentiment"]) for r in rows]

    def negative_reasons(self, site: str, since: datetime, until: datetime) -> list[ReasonCount]:
        """Negative ratings with a reason in ``[since, until]``, counted per reason and location."""
        rows = self.db.query("SELECT reason, location, count(*) AS n FROM ratings WHERE site = ? AND ts >= ? "
                             f"AND ts <= ? AND sentiment = 'negative' AND reason IS NOT NULL AND {NOT_REPEAT} "
                             "GROUP BY reason, location", (site, utc_iso(since), utc_iso(until)))
        return [ReasonCount(r["reason"], r["location"], int(r["n"])) for r in rows]

    def active_locations(self, since: datetime) -> list[tuple[str, str]]:
        """(site, location) of every rating made since ``since``."""
        rows = self.db.query("SELECT DISTINCT site, location FROM ratings WHERE ts >= ?", (utc_iso(since),))
        return [(r["site"], r["location"]) for r in rows]

    def active_devices(self, since: datetime) -> list[tuple[str, str, str]]:
        """(site, device, location) of every rating received since ``since``."""
        rows = self.db.query("SELECT site, device_id, location FROM ratings WHERE received_at >= ? "
                             "GROUP BY site, device_id, location", (utc_iso(since),))
        return [(r["site"], r["device_id"], r["location"]) for r in rows]

    # --- one device's taps ------------------------------------------------------------------------
    def tap_times(self, site: str, device: str, since: datetime, until: datetime, *,
                  newest: int | None = None) -> list[datetime]:
        """When the device's ratings in ``[since, until]`` were made, oldest first (only the ``newest`` ones,
        when given)."""
        sql = "SELECT ts FROM ratings WHERE site = ? AND device_id = ? AND ts >= ? AND ts <= ? "
        params: list[str | int] = [site, device, utc_iso(since), utc_iso(until)]
        if newest is None:
            rows = self.db.query(sql + "ORDER BY ts", params)
        else:
            rows = self.db.query(sql + "ORDER BY ts DESC LIMIT ?", [*params, newest])[::-1]
        return [parse_utc(r["ts"]) for r in rows if r["ts"]]

    def recent_taps(self, site: str, device: str, until: datetime, n: int) -> list[Tap]:
        """The device's last ``n`` ratings up to ``until``, newest first."""
        rows = self.db.query("SELECT value, ts FROM ratings WHERE site = ? AND device_id = ? AND ts <= ? "
                             "ORDER BY ts DESC, seq DESC LIMIT ?", (site, device, utc_iso(until), n))
        return [Tap(int(r["value"]), parse_utc(r["ts"])) for r in rows]

    def last_tap(self, site: str, device: str, until: datetime) -> datetime | None:
        """When the device's latest rating up to ``until`` was made."""
        row = self.db.one("SELECT ts FROM ratings WHERE site = ? AND device_id = ? AND ts <= ? "
                          "ORDER BY ts DESC LIMIT 1", (site, device, utc_iso(until)))
        return parse_utc(row["ts"]) if row and row["ts"] else None

    def next_tap(self, site: str, device: str, after: str) -> str | None:
        """The time (as stored) of the device's first rating after ``after`` (a stored time, or "")."""
        row = self.db.one("SELECT ts FROM ratings WHERE site = ? AND device_id = ? AND ts > ? ORDER BY ts LIMIT 1",
                          (site, device, after))
        return str(row["ts"]) if row else None

    # --- device status --------------------------------------------------------------------------
    def status(self, site: str, device: str) -> DeviceStatus | None:
        """The device's latest status, if it ever sent one."""
        row = self.db.one("SELECT * FROM device_status WHERE site = ? AND device_id = ?", (site, device))
        return cast(DeviceStatus, row) if row else None

    def statuses(self, site: str | None = None) -> list[DeviceStatus]:
        if site:
            rows = self.db.query("SELECT * FROM device_status WHERE site = ? ORDER BY device_id", (site,))
        else:
            rows = self.db.query("SELECT * FROM device_status ORDER BY site, device_id")
        return [cast(DeviceStatus, r) for r in rows]
