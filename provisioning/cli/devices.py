"""``provision device``: create devices with their own identity and credentials, list, replace, rotate, revoke."""

from __future__ import annotations

import csv
import shlex
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from provisioning import devices
from provisioning.broker import apply_to_broker, broker_dir
from provisioning.bundle import Bundle, commit_bundle, copy_to_board, pin_key, prepare_bundle, write_bundle
from provisioning.claims import create_claim
from provisioning.cli.claims import _claim_text, ttl_option
from provisioning.cli.common import (
    F,
    _staff_settings,
    central_org,
    emit,
    json_option,
    pass_inventory,
    provision,
    secret_option,
)
from provisioning.errors import InvalidInput
from provisioning.inventory import Device, DeviceSpec, Inventory
from provisioning.specs import parse_hours, parse_languages, parse_question
from smileloop_core.pin import check_pin_format, hash_pin


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
        plan = copy_to_board(prepared.bundle, board, dry_run=dry_run)
        data["board_command"], data["board_commands"] = plan[0], plan
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
            lines.append(f"  copied to the board with {' '.join(cmd[:3])} … fs cp … {cmd[-1]} (firmware too), "
                         "read back and checked")
        else:
            plan = "\n    ".join(shlex.join(c) for c in data.get("board_commands", [cmd]))
            lines.append(f"  would run (dry run, credentials unchanged):\n    {plan}")
    if show_secret and "password" in data:
        lines.append(f"  password: {data['password']}")
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
@click.option("--pin-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file holding the kiosk's staff PIN (4-12 digits; 6 or more advised): staff mode is on from "
                   "the first boot. Only its hash goes into the bundle. Change it later with smileloop fleet push.")
@click.option("--claim", "make_claim", is_flag=True, help="Make a one-time claim code (and QR) instead of a bundle.")
@ttl_option()
@secret_option
@json_option
@pass_inventory
def device_new(inventory: Inventory, site_id: str, location_id: str, device_id: str | None, scale: str,
               questions: tuple[str, ...], languages: str, hours: tuple[str, ...], pin_file: Path | None,
               out: Path | None,
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
    pin_hash = hash_pin(check_pin_format(_read_pin(pin_file))) if pin_file else None  # refused before anything
    dev = devices.create_device(inventory, spec)
    if pin_hash:
        inventory.set_settings(**{pin_key(dev.device_id): pin_hash})
    org = central_org()
    if org is not None:
        org.device(site_id, location_id, dev.device_id)
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
@ttl_option("Hours the claim codes stay valid (at most 168: 7 days).")
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
@ttl_option()
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
    org = central_org()
    if org is not None:
        org.device(dev.site, dev.location, dev.device_id)
        org.retired(old.site, old_id)
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
    org = central_org()
    if org is not None and not dry_run:
        org.note("device.credentials", f"{bundle.device.site}/{device_id}")
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
    org = central_org()
    if org is not None:
        org.retired(dev.site, device_id)
    pid = apply_to_broker(inventory)
    reload_note = f"broker (pid {pid}) reloaded" if pid else "no running broker found: it applies this at its start"
    emit(as_json, {"device": dev.as_dict(), "reloaded_pid": pid}, f"device {device_id} revoked; {reload_note}")


def _read_pin(path: Path) -> str:
    return path.read_text().strip()
