"""The org tree: sites (time zone, opening hours) → locations (touchpoints) → devices, with the people to tell
at each level. Routing falls back up the tree: a location without contacts uses its site's, a site without
contacts uses the org's (the central CX team); escalation walks the same chain upwards.

Kept in the store as one JSON document (``smileloop org load org.toml`` replaces it), so every worker reads
the same tree. The TOML shape is in docs/ALERTS.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from central.errors import OrgError
from central.retention import Retention
from smileloop_core.hours import HoursConfig, HoursError, parse_hours
from smileloop_core.ids import is_id

_QUIET = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


@dataclass(frozen=True)
class Contact:
    """Someone to tell, by any number of apprise URLs. ``digest`` minutes > 0 collects alerts into one message;
    ``quiet`` ("22:00-07:00", site time) holds deliveries until it ends; ``kudos`` also sends celebrate alerts."""

    name: str
    urls: tuple[str, ...]
    role: str = "owner"
    digest: int = 0
    quiet: tuple[time, time] | None = None
    kudos: bool = True

    def in_quiet(self, when: datetime, tz: str) -> bool:
        if self.quiet is None:
            return False
        local = when.astimezone(ZoneInfo(tz)).time().replace(tzinfo=None)
        start, end = self.quiet
        return start <= local < end if start < end else (local >= start or local < end)


@dataclass(frozen=True)
class Location:
    id: str
    name: str
    devices: tuple[str, ...] = ()
    contacts: tuple[Contact, ...] = ()


@dataclass(frozen=True)
class Site:
    id: str
    name: str
    hours: HoursConfig = field(default_factory=HoursConfig)
    contacts: tuple[Contact, ...] = ()
    locations: dict[str, Location] = field(default_factory=dict)
    visitor_followup: str | None = None  # apprise URL template with {contact}, for visitors who consented
    language: str = "en"


@dataclass(frozen=True)
class Level:
    scope: str  # "location", "site" or "org"
    name: str
    contacts: tuple[Contact, ...]


@dataclass(frozen=True)
class Org:
    name: str = "smileloop"
    contacts: tuple[Contact, ...] = ()
    sites: dict[str, Site] = field(default_factory=dict)
    lifecycle: dict[str, str] = field(default_factory=dict)  # "<site>/<device>" → provisioned … retired
    console_url: str | None = None  # where the web console is: alerts link straight to their page there

    def state_of(self, site_id: str, device: str) -> str | None:
        """The device's lifecycle state, if the organisation records one."""
        return self.lifecycle.get(f"{site_id}/{device}")

    def site(self, site_id: str) -> Site:
        """The site, or an always-open UTC stand-in for a site nobody has described yet."""
        return self.sites.get(site_id) or Site(id=site_id, name=site_id)

    def hours(self, site_id: str) -> HoursConfig:
        return self.site(site_id).hours

    def chain(self, site_id: str, location: str | None) -> list[Level]:
        """Who is told, nearest first; levels without contacts are skipped (the fallback up the tree)."""
        site = self.site(site_id)
        levels: list[Level] = []
        loc = site.locations.get(location or "")
        if loc and loc.contacts:
            levels.append(Level("location", f"{site_id}/{loc.id}", loc.contacts))
        if site.contacts:
            levels.append(Level("site", site_id, site.contacts))
        if self.contacts:
            levels.append(Level("org", self.name, self.contacts))
        return levels

    def level(self, site_id: str, location: str | None, n: int) -> Level | None:
        """The n-th level up (0 = first to be told); None if the chain is shorter."""
        chain = self.chain(site_id, location)
        return chain[n] if n < len(chain) else None

    def location_of(self, site_id: str, device: str) -> str | None:
        for loc in self.site(site_id).locations.values():
            if device in loc.devices:
                return loc.id
        return None

    # --- (de)serialisation ----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Org:
        """Parse and check the org document; every problem names its key, e.g. ``sites.store-1.hours.mon``."""
        _known(data, "", {"name", "contacts", "sites", "lifecycle", "retention", "console_url"})
        _lifecycle(data.get("lifecycle", {}))
        try:  # read by central.retention; checked here so a bad period is refused when the tree is stored
            Retention.from_doc(data.get("retention"))
        except ValueError as e:
            raise OrgError(str(e)) from None
        sites: dict[str, Site] = {}
        raw_sites = data.get("sites", {})
        if not isinstance(raw_sites, dict):
            raise OrgError("sites: must be a table of site id → site")
        for sid, raw in raw_sites.items():
            sites[sid] = _site(sid, raw)
        name = data.get("name", "smileloop")
        if not isinstance(name, str):
            raise OrgError("name: must be a string")
        console_url = data.get("console_url")
        if console_url is not None and (not isinstance(console_url, str) or len(console_url) > 200
                                        or not console_url.startswith(("https://", "http://")) or " " in console_url):
            raise OrgError("console_url: must be the console's address, like https://feedback.example.com")
        return cls(name=name, contacts=_contacts(data.get("contacts", []), "contacts"), sites=sites,
                   lifecycle=dict(data.get("lifecycle", {})), console_url=console_url)

    def summary(self) -> dict[str, Any]:
        """A JSON-able view for ``smileloop org show --json`` (URLs hidden)."""
        def people(cs: tuple[Contact, ...]) -> list[dict[str, Any]]:
            return [{"name": c.name, "role": c.role, "channels": len(c.urls), "digest": c.digest,
                     "quiet": f"{c.quiet[0]:%H:%M}-{c.quiet[1]:%H:%M}" if c.quiet else None} for c in cs]
        return {"name": self.name, "contacts": people(self.contacts), "sites": {
            s.id: {"name": s.name, "timezone": s.hours.timezone,
                   "hours": {d: [f"{a}-{b}" for a, b in spans] for d, spans in s.hours.weekly.items()},
                   "contacts": people(s.contacts),
                   "locations": {loc.id: {"name": loc.name, "devices": list(loc.devices),
                                          "contacts": people(loc.contacts)} for loc in s.locations.values()}}
            for s in self.sites.values()}}


def _lifecycle(raw: Any) -> None:
    """``lifecycle``: ``"<site>/<device>"`` → provisioned | active | inactive | retired."""
    if not isinstance(raw, dict):
        raise OrgError("lifecycle: must be a table of '<site>/<device>' → state")
    for key, state in raw.items():
        if state not in ("provisioned", "active", "inactive", "retired"):
            raise OrgError(f"lifecycle.{key}: {state!r} is not one of provisioned, active, inactive, retired")


def _known(raw: dict[str, Any], where: str, keys: set[str]) -> None:
    for k in raw:
        if k not in keys:
            raise OrgError(f"{where}{k}: unknown key (expected one of {', '.join(sorted(keys))})")


def _ident(value: str, where: str) -> str:
    if not is_id(value):
        raise OrgError(f"{where}: {value!r} is not an identifier (1-64 of A-Z a-z 0-9 . _ -)")
    return value


def _site(sid: str, raw: Any) -> Site:
    where = f"sites.{sid}"
    _ident(sid, where)
    if not isinstance(raw, dict):
        raise OrgError(f"{where}: must be a table")
    _known(raw, where + ".", {"name", "hours", "timezone", "contacts", "locations", "visitor_followup", "language"})
    hours_raw = dict(raw.get("hours") or {})
    if "timezone" in raw:
        hours_raw.setdefault("timezone", raw["timezone"])
    try:
        hours = parse_hours(hours_raw)
    except HoursError as e:
        raise OrgError(f"{where}: hours.{e.key}: {e.problem}") from None
    locations: dict[str, Location] = {}
    raw_locs = raw.get("locations", {})
    if not isinstance(raw_locs, dict):
        raise OrgError(f"{where}.locations: must be a table of location id → location")
    for lid, lraw in raw_locs.items():
        lwhere = f"{where}.locations.{lid}"
        _ident(lid, lwhere)
        if not isinstance(lraw, dict):
            raise OrgError(f"{lwhere}: must be a table")
        _known(lraw, lwhere + ".", {"name", "devices", "contacts"})
        devices = lraw.get("devices", [])
        if not isinstance(devices, list):
            raise OrgError(f"{lwhere}.devices: must be a list of device ids")
        locations[lid] = Location(id=lid, name=str(lraw.get("name", lid)),
                                  devices=tuple(_ident(d, f"{lwhere}.devices") for d in devices),
                                  contacts=_contacts(lraw.get("contacts", []), f"{lwhere}.contacts"))
    followup = raw.get("visitor_followup")
    if followup is not None and (not isinstance(followup, str) or "{contact}" not in followup):
        raise OrgError(f"{where}.visitor_followup: must be an apprise URL containing {{contact}}")
    return Site(id=sid, name=str(raw.get("name", sid)), hours=hours, locations=locations,
                contacts=_contacts(raw.get("contacts", []), f"{where}.contacts"), visitor_followup=followup,
                language=str(raw.get("language", "en")))


def _contacts(raw: Any, where: str) -> tuple[Contact, ...]:
    if not isinstance(raw, list):
        raise OrgError(f"{where}: must be a list of contacts")
    out = []
    for i, c in enumerate(raw):
        cwhere = f"{where}[{i}]"
        if not isinstance(c, dict):
            raise OrgError(f"{cwhere}: must be a table with name and urls")
        _known(c, cwhere + ".", {"name", "urls", "role", "digest", "quiet", "kudos"})
        name = c.get("name")
        if not isinstance(name, str) or not name:
            raise OrgError(f"{cwhere}.name: required")
        urls = c.get("urls", [])
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not all(isinstance(u, str) and "://" in u for u in urls):
            raise OrgError(f"{cwhere}.urls: must be a list of apprise URLs (scheme://…)")
        digest = c.get("digest", 0)
        if isinstance(digest, bool) or not isinstance(digest, int) or digest < 0:
            raise OrgError(f"{cwhere}.digest: minutes, a whole number ≥ 0")
        quiet = c.get("quiet")
        span: tuple[time, time] | None = None
        if quiet is not None:
            if not isinstance(quiet, str) or not _QUIET.match(quiet):
                raise OrgError(f"{cwhere}.quiet: {quiet!r} is not HH:MM-HH:MM")
            a, b = quiet.split("-")
            span = (time.fromisoformat(a), time(0, 0) if b == "24:00" else time.fromisoformat(b))
        kudos = c.get("kudos", True)
        if not isinstance(kudos, bool):
            raise OrgError(f"{cwhere}.kudos: true or false")
        out.append(Contact(name=name, urls=tuple(urls), role=str(c.get("role", "owner")), digest=digest,
                           quiet=span, kudos=kudos))
    return tuple(out)
