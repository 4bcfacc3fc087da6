"""``smileloop provision`` (staff) and ``smileloop enroll`` (a new kiosk): thin commands over the library.

Secrets never reach the terminal or a log unless ``--show-secret`` says so; ``--json`` prints one JSON
document for scripts. Every command's docstring has an example (a test checks that).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from device.config import load_config
from provisioning import devices
from provisioning.broker import (
    BrokerDir,
    apply_to_broker,
    broker_dir,
    default_run_as,
    rotate_account,
    write_broker_config,
)
from provisioning.bundle import Bundle, commit_bundle, copy_to_board, prepare_bundle, write_bundle
from provisioning.claims import DEFAULT_TTL, ClaimCode, ClaimResponder, EnrolProfile, create_claim, qr_file, qr_text
from provisioning.claims import claim as fetch_claim
from provisioning.errors import InvalidInput
from provisioning.inventory import Device, DeviceSpec, Inventory
from provisioning.specs import parse_hours, parse_languages, parse_question
from smileloop.mqtt import BrokerSettings

F = TypeVar("F", bound=Callable[..., Any])


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document (for scripts).")(f)


def secret_option(f: F) -> F:
    return click.option("--show-secret", is_flag=True,
                        help="Also print the password (only where a person really needs to type it).")(f)


def emit(as_json: bool, data: Any, text: str) -> None:
    click.echo(json.dumps(data, indent=1, sort_keys=True) if as_json else text)


@click.group()
@click.option("--inventory", "inventory_path", default="inventory.db", show_default=True, envvar="SMILELOOP_INVENTORY",
              type=click.Path(dir_okay=False, path_type=Path),
              help="The staff inventory SQLite file (env SMILELOOP_INVENTORY).")
@click.pass_context
def provision(ctx: click.Context, inventory_path: Path) -> None:
    """Register sites, locations and devices; issue, rotate and revoke their broker credentials.

    \b
    Example:
        smileloop provision broker-config --out /etc/smileloop/broker --port 1883 --tls-port 8883
        smileloop provision site add store-042 --timezone Europe/Stockholm
        smileloop provision location add store-042 exit-north
        smileloop provision device new --site store-042 --location exit-north --out /media/sdcard
    """
    ctx.obj = inventory_path  # opened by each command that needs it, so --help never creates a file


def pass_inventory(f: Callable[..., Any]) -> Callable[..., Any]:
    """Open the inventory named by ``--inventory`` for one command, and close it after."""

    @functools.wraps(f)
    def with_inventory(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        inventory = Inventory(ctx.obj)
        try:
            return f(inventory, *args, **kwargs)
        finally:
            inventory.close()

    return with_inventory


# --- broker ---------------------------------------------------------------------------------------
@provision.command("broker-config")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for mosquitto.conf, passwd, acl, CA and certificates.")
@click.option("--port", required=True, type=int, help="Plain MQTT listener (keep it on loopback in production).")
@click.option("--tls-port", type=int, help="TLS listener for devices (CA, server and client certificates).")
@click.option("--bind", default="127.0.0.1", show_default=True,
              help="Address devices connect to (the TLS listener; the plain one too if there is no TLS).")
@click.option("--plain-bind", help="Address of the plain listener (default: 127.0.0.1 when there is a TLS port).")
@click.option("--host", "hosts", multiple=True, help="Name devices use for the broker (repeatable; goes in the "
              "server certificate). Default: localhost and 127.0.0.1.")
@click.option("--public-url", help="Broker URL written into device bundles (default from --host and the ports).")
@click.option("--run-as", help="User the broker runs as (as root, default 'mosquitto'); it must read the files.")
@click.option("--client-certs/--no-client-certs", default=True, show_default=True,
              help="Require a client certificate on the TLS listener as well as the password.")
@json_option
@pass_inventory
def broker_config(inventory: Inventory, out: Path, port: int, tls_port: int | None, bind: str, plain_bind: str | None,
                  hosts: tuple[str, ...], public_url: str | None, run_as: str | None, client_certs: bool,
                  as_json: bool) -> None:
    """Write DIR/mosquitto.conf and the files it names; `mosquitto -c DIR/mosquitto.conf` runs it as is.

    Re-running keeps the CA and account passwords, so devices already installed stay valid.

    \b
    Example:
        smileloop provision broker-config --out /etc/smileloop/broker --port 1883 --tls-port 8883 \\
            --bind 0.0.0.0 --host broker.example.com
    """
    setup = write_broker_config(inventory, out, port, bind=bind, plain_bind=plain_bind, tls_port=tls_port,
                                hosts=hosts or ("localhost", "127.0.0.1"), public_url=public_url,
                                run_as=run_as if run_as is not None else default_run_as(),
                                require_client_cert=client_certs)
    plain = plain_bind or ("127.0.0.1" if tls_port else bind)
    inventory.set_settings(local_url=f"mqtt://{'127.0.0.1' if plain in ('0.0.0.0', '::') else plain}:{port}")
    pid = apply_to_broker(inventory)
    d = setup.directory
    data = {"dir": str(d.root), "conf": str(d.conf), "device_url": setup.device_url,
            "central_password_file": str(d.account_password("central")), "enrol_profile": str(d.enrol),
            "reloaded_pid": pid}
    emit(as_json, data, f"wrote {d.conf}\n  run:        mosquitto -c {d.conf}\n"
                        f"  devices use {setup.device_url}\n"
                        f"  central:    --username central --password-file {d.account_password('central')}"
                        f"{' --ca-file ' + str(d.ca_cert) if tls_port else ''}\n"
                        f"  kiosk image: copy {d.enrol.parent}/ for 'smileloop enroll'")


# --- sites and locations --------------------------------------------------------------------------
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
@json_option
@pass_inventory
def site_add(inventory: Inventory, site_id: str, name: str | None, timezone: str, as_json: bool) -> None:
    """Register a site.

    \b
    Example:
        smileloop provision site add store-042 --timezone Europe/Stockholm
    """
    inventory.add_site(site_id, name=name, timezone=timezone)
    emit(as_json, {"site": site_id, "timezone": timezone}, f"site {site_id} added ({timezone})")


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


# --- devices --------------------------------------------------------------------------------------
@provision.group()
def device() -> None:
    """Devices: create with their own identity and credentials, list, rotate, revoke.

    \b
    Example:
        smileloop provision device new --site store-042 --location exit-north --out /media/sdcard
    """


def _deliver(inventory: Inventory, device_id: str, out: Path | None, board: str | None, dry_run: bool,
             show_secret: bool) -> tuple[Bundle, dict[str, Any]]:
    """Deliver new credentials first and only then make them the device's own: a failed copy loses nothing."""
    prepared = prepare_bundle(inventory, device_id)
    data: dict[str, Any] = {}
    if out is not None:
        data["out"] = str(out)
        data["written"] = [str(p) for p in write_bundle(prepared.bundle, out)]
    if board is not None:
        data["board_command"] = copy_to_board(prepared.bundle, board, dry_run=dry_run)
        data["board_copied"] = not dry_run
        if dry_run and out is None:
            return prepared.bundle, {**prepared.bundle.as_dict(), **data}  # nothing delivered: nothing changes
    bundle = commit_bundle(inventory, prepared)
    return bundle, {**bundle.as_dict(show_secret=show_secret), **data}


def _bundle_text(device: Device, data: dict[str, Any], show_secret: bool) -> str:
    lines = [f"device {device.device_id} at {device.site}/{device.location}: {device.state}"]
    if "out" in data:
        lines.append(f"  bundle written to {data['out']}/ (device.toml; password and key files 0600)")
    if "board_command" in data:
        cmd = data["board_command"]
        if data["board_copied"]:
            lines.append(f"  copied to the board with {' '.join(cmd[:3])} … fs cp … {cmd[-1]}")
        else:
            lines.append(f"  would run (dry run, credentials unchanged):\n    {shlex.join(cmd)}")
    if show_secret and "password" in data:
        lines.append(f"  password: {data['password']}")
    return "\n".join(lines)


def _claim_text(code: ClaimCode, qr: bool) -> str:
    lines = [f"claim code for {code.device_id}: {code.code}  (one use, expires {code.expires_at:%Y-%m-%d %H:%M} UTC)"]
    if qr:
        drawn = qr_text(code.code)
        lines.append(drawn if drawn is not None else "  (no QR: the 'qrcode' package is not installed; type the code)")
    return "\n".join(lines)


delivery_options = [
    click.option("--out", type=click.Path(file_okay=False, path_type=Path),
                 help="Write the bundle into this folder (or an SD card)."),
    click.option("--board", metavar="PORT", help="Copy the bundle to a MicroPython board with mpremote (e.g. "
                 "/dev/ttyACM0)."),
    click.option("--dry-run", is_flag=True, help="With --board: print the mpremote command, do not run it "
                 "(credentials stay as they were)."),
]


def with_delivery(f: F) -> F:
    for option in reversed(delivery_options):
        f = option(f)
    return f


@device.command("new")
@click.option("--site", "site_id", required=True)
@click.option("--location", "location_id", required=True)
@click.option("--id", "device_id", help="Device id (default <site>-<location>-<n>); also its broker username.")
@click.option("--scale", default="smiley4", show_default=True, help="smiley4, smiley5, nps or csat5.")
@click.option("--question", "questions", multiple=True, metavar="LANG=TEXT", help="The question (repeatable).")
@click.option("--languages", default="en", show_default=True, help="Comma-separated, e.g. en,sv.")
@click.option("--hours", "hours", multiple=True, metavar="DAYS=SPANS",
              help="Opening hours, e.g. mon-fri=08:00-20:00, sat=10:00-14:00,15:00-18:00, sun=closed.")
@with_delivery
@click.option("--claim", "make_claim", is_flag=True, help="Make a one-time claim code (and QR) instead of a bundle.")
@click.option("--ttl", type=click.FloatRange(min=0.01), default=DEFAULT_TTL.total_seconds() / 3600,
              show_default=True, help="Hours a claim code stays valid.")
@secret_option
@json_option
@pass_inventory
def device_new(inventory: Inventory, site_id: str, location_id: str, device_id: str | None, scale: str,
               questions: tuple[str, ...], languages: str, hours: tuple[str, ...], out: Path | None,
               board: str | None, dry_run: bool, make_claim: bool, ttl: float, show_secret: bool,
               as_json: bool) -> None:
    """Create a device with its own identity and credentials.

    Give --out (a folder, an SD card), --board (a MicroPython panel) or --claim (a kiosk types the code).

    \b
    Examples:
        smileloop provision device new --site store-042 --location exit-north --out /media/sdcard \\
            --scale smiley4 --question "en=How was your visit?" --question "sv=Hur var ditt besök?" \\
            --languages en,sv --hours mon-fri=08:00-20:00 --hours sun=closed
        smileloop provision device new --site store-042 --location exit-north --claim
    """
    if not (out or board or make_claim):
        raise click.UsageError("say where the credentials go: --out DIR, --board PORT or --claim")
    if make_claim and (out or board):
        raise click.UsageError("--claim hands the credentials to the kiosk itself; leave out --out and --board")
    spec = DeviceSpec(site=site_id, location=location_id, device_id=device_id, scale=scale,
                      question=parse_question(questions), languages=parse_languages(languages),
                      hours=parse_hours(hours))
    broker_dir(inventory)  # fail before anything is registered if there is no broker yet
    dev = devices.create_device(inventory, spec)
    if make_claim:
        code = create_claim(inventory, dev.device_id, timedelta(hours=ttl))
        emit(as_json, {"device": dev.as_dict(), "claim_code": code.code, "expires_at": code.expires_at.isoformat()},
             _claim_text(code, qr=True))
        return
    bundle, data = _deliver(inventory, dev.device_id, out, board, dry_run, show_secret)
    emit(as_json, data, _bundle_text(bundle.device, data, show_secret))


@device.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--out-root", type=click.Path(file_okay=False, path_type=Path),
              help="Write each bundle to OUT_ROOT/<device id>/.")
@click.option("--claims-csv", type=click.Path(dir_okay=False, path_type=Path),
              help="Make a claim code per device instead; write them to this CSV (0600).")
@click.option("--create-missing", is_flag=True, help="Add sites and locations the CSV names that are not known.")
@click.option("--ttl", type=click.FloatRange(min=0.01), default=DEFAULT_TTL.total_seconds() / 3600,
              show_default=True, help="Hours the claim codes stay valid.")
@json_option
@pass_inventory
def device_import(inventory: Inventory, csv_file: Any, out_root: Path | None, claims_csv: Path | None,
                  create_missing: bool, ttl: float, as_json: bool) -> None:
    """Create many devices from a CSV, with a progress bar. Every row is checked before any is created.

    Columns: site, location, and optionally id, scale, languages (en;sv), question_<lang>, hours
    (mon-fri=08:00-20:00;sun=closed), timezone (for new sites).

    \b
    Example:
        smileloop provision device import devices.csv --out-root bundles/ --create-missing
    """
    if (out_root is None) == (claims_csv is None):
        raise click.UsageError("give exactly one of --out-root DIR or --claims-csv FILE")
    broker_dir(inventory)
    rows = devices.read_rows(csv.DictReader(csv_file), getattr(csv_file, "name", "<csv>"))
    devices.check_rows(inventory, rows, create_missing=create_missing)
    with click.progressbar(length=len(rows), label="provisioning", file=sys.stderr,
                           show_pos=True) as bar:
        result = devices.provision_rows(inventory, rows, out_root=out_root, claims_csv=claims_csv,
                                     ttl=timedelta(hours=ttl), create_missing=create_missing,
                                     progress=bar.update)
    emit(as_json, result, f"{result['created']} devices created"
                          + (f"; bundles in {out_root}/" if out_root else f"; claim codes in {claims_csv} (0600)"))


@device.command("list")
@click.option("--site", "site_id", help="Only this site.")
@click.option("--refresh", is_flag=True, help="First read every device's retained status from the broker.")
@click.option("--broker", "broker_url", help="Broker for --refresh (default: this setup's local listener).")
@json_option
@pass_inventory
def device_list(inventory: Inventory, site_id: str | None, refresh: bool, broker_url: str | None,
                as_json: bool) -> None:
    """List the inventory with each device's state and when it was last seen.

    \b
    Example:
        smileloop provision device list --site store-042 --refresh
    """
    if refresh:
        from provisioning.status import refresh_last_seen

        refresh_last_seen(inventory, _staff_settings(inventory, broker_url))
    listed = inventory.devices(site=site_id)
    header = f"{'device':<28} {'site/location':<32} {'state':<8} {'last seen':<26} status"
    emit(as_json, [d.as_dict() for d in listed],
         "\n".join([header] + [f"{d.device_id:<28} {d.site + '/' + d.location:<32} {d.state:<8} "
                               f"{d.last_seen or 'never':<26} {d.last_state or '-'}" for d in listed]))


@device.command("replace")
@click.argument("old_id")
@click.option("--id", "device_id", help="Id of the new device (default <site>-<location>-<n>).")
@with_delivery
@click.option("--claim", "make_claim", is_flag=True, help="Make a one-time claim code for the new device.")
@click.option("--ttl", type=click.FloatRange(min=0.01), default=DEFAULT_TTL.total_seconds() / 3600,
              show_default=True, help="Hours a claim code stays valid.")
@secret_option
@json_option
@pass_inventory
def device_replace(inventory: Inventory, old_id: str, device_id: str | None, out: Path | None, board: str | None,
                   dry_run: bool, make_claim: bool, ttl: float, show_secret: bool, as_json: bool) -> None:
    """Swap a device: a new one with the same place and survey settings, and the old one revoked.

    The new device gets a new identity; nothing of the old one is trusted any more.

    \b
    Example:
        smileloop provision device replace store-042-exit-north-1 --claim
    """
    if not (out or board or make_claim):
        raise click.UsageError("say where the new credentials go: --out DIR, --board PORT or --claim")
    if make_claim and (out or board):
        raise click.UsageError("--claim hands the credentials to the kiosk itself; leave out --out and --board")
    if dry_run:
        raise click.UsageError("--dry-run is for 'device new' and 'device rotate'; a replace revokes the old device")
    old = inventory.device(old_id)
    if old.state == "revoked":
        raise InvalidInput(f"device {old_id!r} is already revoked; use 'device new' at its location")
    dev = devices.create_device(inventory, devices.successor_spec(old, device_id))
    result: dict[str, Any]
    if make_claim:
        code = create_claim(inventory, dev.device_id, timedelta(hours=ttl))
        result, text = ({"device": dev.as_dict(), "claim_code": code.code, "expires_at": code.expires_at.isoformat()},
                        _claim_text(code, qr=True))
    else:
        bundle, result = _deliver(inventory, dev.device_id, out, board, False, show_secret)
        text = _bundle_text(bundle.device, result, show_secret)
    inventory.revoke(old_id)  # only once the new one exists and its credentials went where they should
    apply_to_broker(inventory)
    emit(as_json, {**result, "replaced": old_id}, f"{text}\ndevice {old_id} revoked (replaced by {dev.device_id})")


@device.command("rotate")
@click.argument("device_id")
@with_delivery
@secret_option
@json_option
@pass_inventory
def device_rotate(inventory: Inventory, device_id: str, out: Path | None, board: str | None, dry_run: bool,
                  show_secret: bool, as_json: bool) -> None:
    """New credentials for a device; the old ones stop working as soon as the broker reloads.

    \b
    Example:
        smileloop provision device rotate store-042-exit-north-1 --out /media/sdcard
    """
    if not (out or board):
        raise click.UsageError("say where the new credentials go: --out DIR or --board PORT")
    bundle, data = _deliver(inventory, device_id, out, board, dry_run, show_secret)
    emit(as_json, data, _bundle_text(bundle.device, data, show_secret))


@device.command("revoke")
@click.argument("device_id")
@json_option
@pass_inventory
def device_revoke(inventory: Inventory, device_id: str, as_json: bool) -> None:
    """Take a device's broker account and certificate away; it is refused at its next connect.

    \b
    Example:
        smileloop provision device revoke store-042-exit-north-1
    """
    dev = inventory.revoke(device_id)
    pid = apply_to_broker(inventory)
    reload_note = f"broker (pid {pid}) reloaded" if pid else "no running broker found: it applies this at its start"
    emit(as_json, {"device": dev.as_dict(), "reloaded_pid": pid}, f"device {device_id} revoked; {reload_note}")


@provision.group()
def account() -> None:
    """The broker accounts that are not devices: central, provisioner, claim.

    \b
    Example:
        smileloop provision account rotate central
    """


@account.command("rotate")
@click.argument("username", type=click.Choice(["central", "provisioner", "claim"]))
@json_option
@pass_inventory
def account_rotate(inventory: Inventory, username: str, as_json: bool) -> None:
    """New password for a broker account; restart whatever uses it (central reads its password file at start).

    \b
    Example:
        smileloop provision account rotate central
    """
    path = rotate_account(inventory, username)
    emit(as_json, {"account": username, "password_file": str(path)},
         f"account {username}: new password in {path} (0600); the old one stops working now")


# --- claim codes ----------------------------------------------------------------------------------
@provision.group("claim")
def claim_group() -> None:
    """One-time claim codes for kiosks that fetch their own credentials.

    \b
    Example:
        smileloop provision claim new store-042-exit-north-1 --qr label.svg
    """


@claim_group.command("new")
@click.argument("device_id")
@click.option("--ttl", type=click.FloatRange(min=0.01), default=DEFAULT_TTL.total_seconds() / 3600,
              show_default=True, help="Hours the code stays valid.")
@click.option("--qr", "qr_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the QR code to a .svg or .png file for a label.")
@json_option
@pass_inventory
def claim_new(inventory: Inventory, device_id: str, ttl: float, qr_path: Path | None, as_json: bool) -> None:
    """Make a one-time claim code (and QR) for a device; a new kiosk types or scans it.

    \b
    Example:
        smileloop provision claim new store-042-exit-north-1 --ttl 24 --qr label.svg
    """
    code = create_claim(inventory, device_id, timedelta(hours=ttl))
    if qr_path is not None:
        qr_file(code.code, qr_path)
    emit(as_json, {"device": device_id, "claim_code": code.code, "expires_at": code.expires_at.isoformat(),
                   "qr_file": str(qr_path) if qr_path else None}, _claim_text(code, qr=not qr_path))


def _staff_settings(inventory: Inventory, broker_url: str | None) -> BrokerSettings:
    """The provisioner account on this setup's local listener (it runs beside the broker's files)."""
    d: BrokerDir = broker_dir(inventory)
    url = broker_url or inventory.setting("local_url")
    if url is None:
        raise InvalidInput("no broker URL: pass --broker")
    settings = BrokerSettings.from_url(url, username="provisioner", connect_timeout=5.0)
    if settings.tls:
        cert, key = d.account_cert("provisioner")
        settings = BrokerSettings.from_url(url, username="provisioner", ca_file=d.ca_cert,
                                           cert_file=cert if cert.exists() else None,
                                           key_file=key if key.exists() else None)
    return settings.with_password_file(d.account_password("provisioner"))


@provision.command("serve-claims")
@click.option("--broker", "broker_url", help="Broker URL (default: this setup's local listener).")
@click.option("--duration", type=click.FloatRange(min=0.1), help="Stop after this many seconds.")
@pass_inventory
def serve_claims(inventory: Inventory, broker_url: str | None, duration: float | None) -> None:
    """Answer claim codes: each new kiosk gets its own fresh credentials, once.

    Run it on the broker's host (it re-writes the password file and reloads the broker).

    \b
    Example:
        smileloop provision serve-claims
    """
    responder = ClaimResponder(inventory, _staff_settings(inventory, broker_url))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(f"answering claim codes on {responder.settings.redacted()}; Ctrl-C stops", err=True)
    if duration is not None:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True
        timer.start()
    with contextlib.suppress(KeyboardInterrupt):
        responder.run(stop)
    click.echo(f"answered {responder.answered}, refused {responder.refused}", err=True)


# --- the kiosk side -------------------------------------------------------------------------------
@click.command()
@click.option("--profile", required=True, type=click.Path(dir_okay=False, path_type=Path), envvar="SMILELOOP_ENROL",
              help="enrol.toml from the kiosk image (env SMILELOOP_ENROL).")
@click.option("--code", prompt="Claim code", help="The one-time code staff were given (K7QF-9XRT-M2PA).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for this device's device.toml and credentials.")
@click.option("--timeout", type=click.FloatRange(min=0.5), default=30.0, show_default=True)
@json_option
def enroll(profile: Path, code: str, out: Path, timeout: float, as_json: bool) -> None:
    """Fetch this kiosk's own config and credentials once, with a claim code.

    \b
    Example:
        smileloop enroll --profile /etc/smileloop/enrol/enrol.toml --code K7QF-9XRT-M2PA --out /etc/smileloop
    """
    settings = EnrolProfile.load(profile).settings
    bundle = fetch_claim(settings, code, timeout=timeout)
    written = write_bundle(bundle, out)
    load_config(out / "device.toml")  # the device's own validator: what it fetched must run as is
    dev = bundle.device
    emit(as_json, {"device": dev.device_id, "site": dev.site, "location": dev.location, "out": str(out),
                   "written": [str(p) for p in written]},
         f"enrolled as {dev.device_id} at {dev.site}/{dev.location}; config in {out / 'device.toml'}")
