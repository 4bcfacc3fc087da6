"""Changing the organisation: sites, opening hours, locations, devices and their lifecycle, contacts — one change
at a time, each checked, versioned and audited with who made it.

The organisation lives in central's store (the ``org`` document, SQLite or PostgreSQL), so central, the
commands and provisioning read and write one tree: nobody edits a file. ``smileloop org load`` / ``org export``
stay for bulk changes and review. Every change is validated by :meth:`central.org.Org.from_dict` before it is
stored, so a running worker never meets a broken tree.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from central.errors import OrgError
from central.org import Org
from central.store import CentralStore
from smileloop_core.clock import Clock, SystemClock
from smileloop_core.hours import HoursError, parse_hours
from smileloop_core.ids import id_problem

LIFECYCLE = ("provisioned", "active", "inactive", "retired")


class OrgAdmin:
    """``OrgAdmin(store, actor="anna")``: each method is one audited change of the org tree."""

    def __init__(self, store: CentralStore, actor: str, *, clock: Clock | None = None) -> None:
        if not actor.strip():
            raise OrgError("who makes the change must be named (--by)")
        self.store = store
        self.actor = actor.strip()[:100]
        self.clock = clock or SystemClock()

    # --- reading --------------------------------------------------------------------------------
    def document(self) -> dict[str, Any]:
        return self.store.document("org")[0]

    def org(self) -> Org:
        return Org.from_dict(self.document())

    # --- changes --------------------------------------------------------------------------------
    def add_site(self, site: str, *, name: str | None = None, timezone: str = "UTC",
                 hours: dict[str, Any] | None = None, language: str | None = None) -> int:
        """A new site (or its name, time zone, hours and language updated if it exists)."""
        _need_id(site, "site")
        try:
            parse_hours({"timezone": timezone, **(hours or {})})  # a clear error before anything is stored
        except HoursError as e:
            raise OrgError(f"sites.{site}.hours.{e.key}: {e.problem}") from None

        def change(doc: dict[str, Any]) -> None:
            s = doc.setdefault("sites", {}).setdefault(site, {})
            if name:
                s["name"] = name
            s["timezone"] = timezone
            s.pop("hours", None) if hours is None else s.__setitem__("hours", dict(hours))
            if language:
                s["language"] = language
        return self._apply("site.set", site, change)

    def set_hours(self, site: str, hours: dict[str, Any]) -> int:
        """Replace a site's opening hours (``{"mon": "08:00-20:00", "sun": "closed", …}``)."""
        def change(doc: dict[str, Any]) -> None:
            s = _site(doc, site)
            parse_hours({"timezone": s.get("timezone", "UTC"), **hours})
            s["hours"] = dict(hours)
        return self._apply("site.hours", site, change)

    def add_location(self, site: str, location: str, *, name: str | None = None) -> int:
        _need_id(location, "location")

        def change(doc: dict[str, Any]) -> None:
            loc = _site(doc, site).setdefault("locations", {}).setdefault(location, {})
            if name:
                loc["name"] = name
        return self._apply("location.add", f"{site}/{location}", change)

    def add_device(self, site: str, location: str, device: str, *, state: str = "provisioned") -> int:
        """Register a device at a location (moving it there if it stood elsewhere), in a lifecycle state."""
        _need_id(device, "device")
        _need_state(state)

        def change(doc: dict[str, Any]) -> None:
            s = _site(doc, site)
            locations = s.get("locations", {})
            if location not in locations:
                raise OrgError(f"location {location!r} is not at site {site!r} (add it first)")
            for loc in locations.values():
                if device in loc.get("devices", []):
                    loc["devices"].remove(device)
            locations[location].setdefault("devices", []).append(device)
            doc.setdefault("lifecycle", {})[f"{site}/{device}"] = state
        return self._apply("device.add", f"{site}/{device}", change)

    def set_device_state(self, site: str, device: str, state: str) -> int:
        """provisioned → active → inactive → retired (a retired device leaves its location's list)."""
        _need_state(state)

        def change(doc: dict[str, Any]) -> None:
            key = f"{site}/{device}"
            if key not in doc.get("lifecycle", {}):
                raise OrgError(f"device {device!r} is not registered at site {site!r}")
            doc["lifecycle"][key] = state
            if state == "retired":
                for loc in _site(doc, site).get("locations", {}).values():
                    if device in loc.get("devices", []):
                        loc["devices"].remove(device)
        return self._apply(f"device.{state}", f"{site}/{device}", change)

    def add_contact(self, scope: str, name: str, urls: list[str], *, digest: int = 0, quiet: str | None = None,
                    kudos: bool = True) -> int:
        """Someone to tell at ``scope``: ``org``, ``<site>`` or ``<site>/<location>`` (replacing a contact of
        the same name there)."""
        if not name.strip() or not urls:
            raise OrgError("a contact needs a name and at least one URL")
        contact: dict[str, Any] = {"name": name, "urls": list(urls), "digest": digest, "kudos": kudos}
        if quiet:
            contact["quiet"] = quiet

        def change(doc: dict[str, Any]) -> None:
            holder = _scope(doc, scope)
            holder["contacts"] = [c for c in holder.get("contacts", []) if c.get("name") != name] + [contact]
        return self._apply("contact.set", f"{scope}:{name}", change)

    def replace(self, doc: dict[str, Any]) -> int:
        """The whole tree at once (``org load``)."""
        def change(current: dict[str, Any]) -> None:
            current.clear()
            current.update(copy.deepcopy(doc))
        return self._apply("org.load", "org", change)

    def set_rules(self, doc: dict[str, Any]) -> int:
        """The rule settings (already checked by :func:`central.rulebook.validate_rules`), audited like the org."""
        now = self.clock.now()
        with self.store.transaction():
            before = self.store.document("rules")[0]
            version = self.store.put_document("rules", doc, now)
            self.store.org_audit(now, self.actor, "rules.set", "rules", json.dumps(before, sort_keys=True),
                                 json.dumps(doc, sort_keys=True))
        return version

    def note(self, action: str, target: str) -> None:
        """Record a change made elsewhere (provisioning: credentials rotated, a device replaced) in the audit."""
        self.store.org_audit(self.clock.now(), self.actor, action, target, "", "")

    # --- the one way a change is made -------------------------------------------------------------
    def _apply(self, action: str, target: str, change: Callable[[dict[str, Any]], Any]) -> int:
        now = self.clock.now()
        with self.store.transaction():
            before = self.document()
            after = copy.deepcopy(before)
            change(after)
            Org.from_dict(copy.deepcopy(after))  # every problem named by key, before anything is stored
            version = self.store.put_document("org", after, now)
            self.store.org_audit(now, self.actor, action, target, _shown(before), _shown(after))
        return version


def _site(doc: dict[str, Any], site: str) -> dict[str, Any]:
    s = doc.get("sites", {}).get(site)
    if s is None:
        raise OrgError(f"site {site!r} is not in the organisation (add it: smileloop org site add {site} …)")
    return s


def _scope(doc: dict[str, Any], scope: str) -> dict[str, Any]:
    if scope == "org":
        return doc
    site, _, location = scope.partition("/")
    s = _site(doc, site)
    if not location:
        return s
    loc = s.get("locations", {}).get(location)
    if loc is None:
        raise OrgError(f"location {location!r} is not at site {site!r}")
    return loc


def _need_id(value: str, what: str) -> None:
    problem = id_problem(value, what)
    if problem:
        raise OrgError(problem)


def _need_state(state: str) -> None:
    if state not in LIFECYCLE:
        raise OrgError(f"device state {state!r} is not one of {', '.join(LIFECYCLE)}")


def _shown(doc: dict[str, Any]) -> str:
    """The audit's before/after, with contact URLs (they hold tokens) replaced by their count."""
    def hide(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: f"{len(v)} URL(s)" if k == "urls" and isinstance(v, list) else hide(v)
                    for k, v in node.items()}
        if isinstance(node, list):
            return [hide(v) for v in node]
        return node
    return json.dumps(hide(doc), ensure_ascii=False, sort_keys=True)
