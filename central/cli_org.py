"""``smileloop org``: the organisation in central's store — sites, hours, locations, devices, contacts — changed
one audited step at a time (no file to edit), or loaded and exported whole as TOML for bulk changes and review."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import tomli_w

from central.cli_options import checked_org, db_options, db_options_creating, echo_json, json_option, load_toml, org_of
from central.errors import OrgError
from central.org_admin import LIFECYCLE, OrgAdmin
from central.store import CentralStore


def by_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--by``: who makes the change, recorded in the audit (default: $SMILELOOP_BY, else the login name)."""
    return click.option("--by", default=lambda: os.environ.get("SMILELOOP_BY") or getpass.getuser(),
                        show_default="$SMILELOOP_BY or your login name",
                        help="Who makes the change (recorded in the audit).")(fn)


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: use DAY=HH:MM-HH:MM or DAY=closed", param_hint=what)
        out[key.strip()] = value.strip()
    return out


# --- org ----------------------------------------------------------------------------------------
@click.group()
def org() -> None:
    """The org tree: sites (time zone, hours) → locations → devices, and who to tell.

    \b
    Example:
        smileloop org load org.toml
        smileloop org route store-042 exit-north
    """


@org.command("load")
@db_options_creating
@by_option
@json_option
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def org_load(store: CentralStore, as_json: bool, path: Path, by: str) -> None:
    """Replace the org tree with a TOML file (checked first; running workers pick it up).

    \b
    Example:
        smileloop org load org.toml --db central.db
    """
    doc = checked_org(load_toml(path))
    version = OrgAdmin(store, by).replace(doc)
    if as_json:
        echo_json({"version": version, "sites": sorted(doc.get("sites", {}))})
        return
    click.echo(f"org tree version {version}: {len(doc.get('sites', {}))} site(s)")


@org.command("show")
@db_options
@json_option
def org_show(store: CentralStore, as_json: bool) -> None:
    """The org tree (contact URLs hidden).

    \b
    Example:
        smileloop org show --json
    """
    summary = org_of(store).summary()
    if as_json:
        echo_json(summary)
        return
    click.echo(f"{summary['name']}  contacts: {', '.join(c['name'] for c in summary['contacts']) or '-'}")
    for sid, s in summary["sites"].items():
        click.echo(f"  {sid} ({s['timezone']})  contacts: {', '.join(c['name'] for c in s['contacts']) or '-'}")
        if s["hours"]:
            click.echo("    hours: " + ", ".join(f"{day} {' '.join(spans) or 'closed'}"
                                         for day, spans in s["hours"].items()))
        for lid, loc in s["locations"].items():
            click.echo(f"    {lid}  devices: {', '.join(loc['devices']) or '-'}  "
                       f"contacts: {', '.join(c['name'] for c in loc['contacts']) or '-'}")


@org.command("route")
@db_options
@json_option
@click.argument("site")
@click.argument("location", required=False)
def org_route(store: CentralStore, as_json: bool, site: str, location: str | None) -> None:
    """Who is told about an alert here, level by level (the fallback up the tree made visible).

    \b
    Example:
        smileloop org route store-042 exit-north
    """
    chain = org_of(store).chain(site, location)
    rows: list[dict[str, Any]] = [
        {"level": i, "scope": lv.scope, "name": lv.name, "contacts": [c.name for c in lv.contacts]}
            for i, lv in enumerate(chain)]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("nobody: add contacts to the location, the site or the org")
    for r in rows:
        click.echo(f"level {r['level']}  {r['scope']:<8} {r['name']:<24} {', '.join(r['contacts'])}")


@org.group("site")
def org_site() -> None:
    """Sites: name, time zone, opening hours, language.

    \b
    Example:
        smileloop org site add store-042 --timezone Europe/Stockholm --hours mon=08:00-20:00 --language sv
    """


@org_site.command("add")
@db_options_creating
@by_option
@click.argument("site")
@click.option("--name", help="A human name.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of the opening hours.")
@click.option("--hours", "hours", multiple=True, metavar="DAY=SPANS",
              help="Opening hours of a weekday (mon … sun): 08:00-20:00, or closed (repeatable).")
@click.option("--language", help="The site's language for alert texts and outcomes (en, sv).")
def org_site_add(store: CentralStore, by: str, site: str, name: str | None, timezone: str, hours: tuple[str, ...],
                 language: str | None) -> None:
    """Add a site, or change its name, time zone, hours and language.

    \b
    Example:
        smileloop org site add store-042 --name "Store 42" --timezone Europe/Stockholm \\
            --hours mon=08:00-20:00 --hours sat=10:00-16:00 --hours sun=closed --language sv --by anna
    """
    version = OrgAdmin(store, by).add_site(site, name=name, timezone=timezone,
                                            hours=_pairs(hours, "--hours") or None, language=language)
    click.echo(f"org version {version}: site {site}")


@org.group("location")
def org_location() -> None:
    """Locations (touchpoints) of a site.

    \b
    Example:
        smileloop org location add store-042 exit-north --name "Exit north"
    """


@org_location.command("add")
@db_options
@by_option
@click.argument("site")
@click.argument("location")
@click.option("--name", help="A human name.")
def org_location_add(store: CentralStore, by: str, site: str, location: str, name: str | None) -> None:
    """Add a location to a site.

    \b
    Example:
        smileloop org location add store-042 exit-north --name "Exit north" --by anna
    """
    click.echo(f"org version {OrgAdmin(store, by).add_location(site, location, name=name)}: {site}/{location}")


@org.group("device")
def org_device() -> None:
    """Devices at locations and their lifecycle: provisioned → active → inactive → retired.

    \b
    Example:
        smileloop org device add store-042 exit-north kiosk-7
        smileloop org device state store-042 kiosk-7 retired
    """


@org_device.command("add")
@db_options
@by_option
@click.argument("site")
@click.argument("location")
@click.argument("device")
def org_device_add(store: CentralStore, by: str, site: str, location: str, device: str) -> None:
    """Register a device at a location (provisioning does this for the devices it makes).

    \b
    Example:
        smileloop org device add store-042 exit-north kiosk-7 --by anna
    """
    click.echo(f"org version {OrgAdmin(store, by).add_device(site, location, device)}: {site}/{device} provisioned")


@org_device.command("state")
@db_options
@by_option
@click.argument("site")
@click.argument("device")
@click.argument("state", type=click.Choice(LIFECYCLE))
def org_device_state(store: CentralStore, by: str, site: str, device: str, state: str) -> None:
    """Move a device through its lifecycle.

    \b
    Example:
        smileloop org device state store-042 kiosk-7 inactive --by anna
    """
    click.echo(f"org version {OrgAdmin(store, by).set_device_state(site, device, state)}: {site}/{device} {state}")


@org.group("contact")
def org_contact() -> None:
    """Who to tell, at the org (head office), a site or a location.

    \b
    Example:
        smileloop org contact add store-042/exit-north --name lead --url-file lead.url
    """


@org_contact.command("add")
@db_options
@by_option
@click.argument("scope")
@click.option("--name", required=True, help="The contact's name (a person or a team).")
@click.option("--url", "urls", multiple=True, help="An apprise URL (it holds tokens: prefer --url-file).")
@click.option("--url-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file of apprise URLs, one per line, kept off the command line.")
@click.option("--digest", default=0, show_default=True, help="Collect alerts into one message every N minutes.")
@click.option("--quiet", help="Hold deliveries in these site-local hours, e.g. 22:00-07:00.")
def org_contact_add(store: CentralStore, by: str, scope: str, name: str, urls: tuple[str, ...],
                    url_file: Path | None, digest: int, quiet: str | None) -> None:
    """Add (or replace) a contact at SCOPE: ``org``, ``SITE`` or ``SITE/LOCATION``.

    \b
    Example:
        smileloop org contact add store-042 --name site-manager --url-file /etc/smileloop/manager.url --by anna
    """
    found = list(urls)
    if url_file:
        found += [ln.strip() for ln in url_file.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if not found:
        raise click.BadParameter("give --url or --url-file", param_hint="--url")
    version = OrgAdmin(store, by).add_contact(scope, name, found, digest=digest, quiet=quiet)
    click.echo(f"org version {version}: contact {name} at {scope}")


@org.command("export")
@db_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file (else stdout).")
def org_export(store: CentralStore, out: Path | None) -> None:
    """The whole organisation as TOML (the shape ``org load`` reads), for review and bulk changes.

    \b
    Example:
        smileloop org export --out org.toml && smileloop org load org.toml
    """
    text = tomli_w.dumps(store.document("org")[0])
    if out:
        out.write_text(text)
        click.echo(f"wrote {out}")
    else:
        click.echo(text, nl=False)


@org.command("audit")
@db_options
@json_option
@click.option("--limit", default=50, show_default=True)
def org_audit(store: CentralStore, as_json: bool, limit: int) -> None:
    """Who changed the organisation, what and when (latest first).

    \b
    Example:
        smileloop org audit --limit 20
    """
    rows = store.org_audit_entries(limit)
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['at']}  {r['actor']:<12} {r['action']:<18} {r['target']}")


__all__ = ["OrgError", "org"]
