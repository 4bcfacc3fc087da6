"""``provision claim`` (staff make a one-time code) and ``smileloop enroll`` (a new kiosk redeems it)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from device import load_config
from provisioning.bundle import write_bundle
from provisioning.claims import DEFAULT_TTL, ClaimCode, EnrolProfile, check_ttl, create_claim, qr_file, qr_text
from provisioning.claims import claim as fetch_claim
from provisioning.cli.common import F, emit, json_option, pass_inventory, provision
from provisioning.errors import InvalidInput
from provisioning.inventory import Inventory


def _ttl(ctx: click.Context, param: click.Parameter, hours: float) -> float:
    try:
        check_ttl(timedelta(hours=hours))
    except InvalidInput as e:
        raise click.BadParameter(str(e)) from None
    return hours


def ttl_option(help_text: str = "Hours a claim code stays valid (at most 168: 7 days).") -> Callable[[F], F]:
    """``--ttl HOURS``, checked before anything is created."""
    def decorate(f: F) -> F:
        option: Callable[[Any], F] = click.option(
            "--ttl", type=float, default=DEFAULT_TTL.total_seconds() / 3600, show_default=True, callback=_ttl,
            help=help_text)
        return option(f)
    return decorate


def _claim_text(code: ClaimCode, qr: bool) -> str:
    lines = [f"claim code for {code.device_id}: {code.code}  (one use, expires {code.expires_at:%Y-%m-%d %H:%M} UTC)"]
    if qr:
        drawn = qr_text(code.code)
        lines.append(drawn if drawn is not None else "  (no QR: the 'qrcode' package is not installed; type the code)")
    return "\n".join(lines)


@provision.group("claim")
def claim_group() -> None:
    """One-time claim codes for kiosks that fetch their own credentials.

    \b
    Example:
        smileloop provision claim new store-042-exit-north-1 --qr label.svg
    """


@claim_group.command("new")
@click.argument("device_id")
@ttl_option()
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
    loaded = EnrolProfile.load(profile)
    bundle = fetch_claim(loaded.settings, code, responder_key=loaded.responder_key, timeout=timeout)
    written = write_bundle(bundle, out)
    load_config(out / "device.toml")  # the device's own validator: what it fetched must run as is
    dev = bundle.device
    emit(as_json, {"device": dev.device_id, "site": dev.site, "location": dev.location, "out": str(out),
                   "written": [str(p) for p in written]},
         f"enrolled as {dev.device_id} at {dev.site}/{dev.location}; config in {out / 'device.toml'}")
