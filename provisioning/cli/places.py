"""``provision site`` and ``provision location``: where devices stand."""

from __future__ import annotations

import click

from provisioning.cli.common import central_org, emit, json_option, pass_inventory, pass_inventory_creating, provision
from provisioning.inventory import Inventory
from provisioning.specs import parse_hours


@provision.group()
def site() -> None:
    """Sites: a store, clinic or office, with its time zone.

    \b
    Example:
        smileloop provision site add store-042 --name "Store 42" --timezone Europe/Stockholm
    """


@site.command("add")
@click.argument("site_id")
@click.option("--name", help="A human name.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of the opening hours.")
@click.option("--hours", "hours", multiple=True, metavar="DAYS=SPANS",
              help="Opening hours, e.g. mon-fri=08:00-20:00, sun=closed (repeatable): central's SLA clocks and "
                   "silence alerts pause outside them.")
@click.option("--language", help="The site's language for alert texts and outcomes (en, sv).")
@json_option
@pass_inventory_creating
def site_add(inventory: Inventory, site_id: str, name: str | None, timezone: str, hours: tuple[str, ...],
             language: str | None, as_json: bool) -> None:
    """Register a site (and, with --central-db, put it in central's organisation with its hours).

    \b
    Example:
        smileloop provision --central-db central.db site add store-042 --timezone Europe/Stockholm \\
            --hours mon-fri=08:00-20:00 --hours sat=10:00-16:00 --hours sun=closed --language sv
    """
    table = parse_hours(hours) if hours else None
    org = central_org()
    if org is not None:  # checked (and the hours validated) by central before the inventory changes
        org.site(site_id, name=name, timezone=timezone, hours=table, language=language)
    inventory.add_site(site_id, name=name, timezone=timezone)
    emit(as_json, {"site": site_id, "timezone": timezone, "central": org is not None},
         f"site {site_id} added ({timezone})" + (" and in central's organisation" if org else ""))


@site.command("list")
@json_option
@pass_inventory
def site_list(inventory: Inventory, as_json: bool) -> None:
    """List sites with their number of locations and devices.

    \b
    Example:
        smileloop provision site list --json
    """
    rows = inventory.sites()
    emit(as_json, rows, "\n".join(f"{r['id']:<24} {r['timezone']:<20} {r['locations']} locations, "
                                  f"{r['devices']} devices" for r in rows) or "no sites")


@provision.group()
def location() -> None:
    """Locations: a touchpoint within a site (an exit, a counter).

    \b
    Example:
        smileloop provision location add store-042 exit-north
    """


@location.command("add")
@click.argument("site_id")
@click.argument("location_id")
@click.option("--name", help="A human name.")
@json_option
@pass_inventory
def location_add(inventory: Inventory, site_id: str, location_id: str, name: str | None, as_json: bool) -> None:
    """Register a location at a site.

    \b
    Example:
        smileloop provision location add store-042 exit-north --name "North exit"
    """
    inventory.add_location(site_id, location_id, name=name)
    org = central_org()
    if org is not None:
        org.location(site_id, location_id, name=name)
    emit(as_json, {"site": site_id, "location": location_id}, f"location {site_id}/{location_id} added")


@location.command("list")
@click.option("--site", "site_id", help="Only this site.")
@json_option
@pass_inventory
def location_list(inventory: Inventory, site_id: str | None, as_json: bool) -> None:
    """List locations.

    \b
    Example:
        smileloop provision location list --site store-042
    """
    rows = inventory.locations(site_id)
    emit(as_json, rows, "\n".join(f"{r['site']}/{r['id']}" for r in rows) or "no locations")


@provision.command("org-sync")
@json_option
@pass_inventory
def org_sync(inventory: Inventory, as_json: bool) -> None:
    """Copy every site, location and device of the inventory into central's organisation (once, when moving
    an existing installation to one organisation store; running it again changes nothing).

    \b
    Example:
        smileloop provision --central-db /var/lib/smileloop/central.db org-sync
    """
    org = central_org()
    if org is None:
        raise click.UsageError("name central's store: --central-db (or SMILELOOP_CENTRAL_DB)")
    counts = org.sync(inventory)
    emit(as_json, counts, f"central's organisation: {counts['sites']} site(s), {counts['locations']} location(s), "
                          f"{counts['devices']} device(s) added")
