"""Provisioning writes what it registers into central's organisation store, so sites, hours, locations and
devices are entered once — by the staff who install them — and central routes and times alerts from the same
tree. Provisioning sits above central for this (docs/ARCHITECTURE.md); central never imports provisioning.

Given ``--central-db`` (or ``SMILELOOP_CENTRAL_DB``), each ``smileloop provision`` change is also one audited
change of central's org tree (:class:`central.org_admin.OrgAdmin`); without it, provisioning keeps only its own
inventory, as before. ``smileloop provision org-sync`` copies a whole existing inventory over once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from central import CentralStore
from central.org_admin import OrgAdmin
from provisioning.inventory import Inventory


@dataclass
class CentralOrg:
    """Central's org tree, as provisioning changes it; ``by`` is recorded in central's audit."""

    target: str
    by: str
    schema: str | None = None
    _store: CentralStore | None = field(default=None, repr=False)

    def _admin(self) -> OrgAdmin:
        if self._store is None:
            self._store = CentralStore(self.target, schema=self.schema)
        return OrgAdmin(self._store, self.by)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def site(self, site: str, *, name: str | None, timezone: str, hours: dict[str, Any] | None,
             language: str | None) -> int:
        return self._admin().add_site(site, name=name, timezone=timezone, hours=hours, language=language)

    def location(self, site: str, location: str, *, name: str | None) -> int:
        return self._admin().add_location(site, location, name=name)

    def device(self, site: str, location: str, device: str) -> int:
        return self._admin().add_device(site, location, device)

    def retired(self, site: str, device: str) -> int:
        return self._admin().set_device_state(site, device, "retired")

    def note(self, action: str, target: str) -> None:
        """A change provisioning alone holds (new credentials), recorded in central's audit with who made it."""
        self._admin().note(action, target)

    def sync(self, inventory: Inventory) -> dict[str, int]:
        """Every site, location and device of ``inventory`` into central's tree (idempotent): the one-time
        migration from two stores to one."""
        admin = self._admin()
        known = admin.org()
        counts = {"sites": 0, "locations": 0, "devices": 0}
        for s in inventory.sites():
            if s["id"] not in known.sites:
                admin.add_site(s["id"], name=s.get("name"), timezone=s["timezone"])
                counts["sites"] += 1
        org = admin.org()
        for loc in inventory.locations():
            if loc["id"] not in org.site(loc["site"]).locations:
                admin.add_location(loc["site"], loc["id"], name=loc.get("name"))
                counts["locations"] += 1
        org = admin.org()
        for dev in inventory.devices(include_revoked=False):
            if org.location_of(dev.site, dev.device_id) != dev.location:
                admin.add_device(dev.site, dev.location, dev.device_id)
                counts["devices"] += 1
        return counts
