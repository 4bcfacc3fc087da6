"""Creating devices: one, checked against the device's own config validator, or many from a CSV.

A CSV is checked whole before anything is created, so a typo in row 40 does not leave 39 half-made devices.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from device import ConfigError, parse_config
from provisioning.broker import apply_to_broker
from provisioning.bundle import device_config, issue_bundle, write_bundle
from provisioning.claims import create_claim
from provisioning.credentials import write_secret
from provisioning.errors import AlreadyExists, InvalidInput, NotFound, ProvisioningError
from provisioning.inventory import Device, DeviceSpec, Inventory
from provisioning.specs import parse_hours, parse_languages, parse_question

MAX_ROWS = 10_000


def check_spec(spec: DeviceSpec, timezone: str) -> None:
    """Run the device.toml this spec will become through ``device.config.parse_config``, before creating it."""
    probe = Device(device_id=spec.device_id or "probe", site=spec.site, location=spec.location, state="new",
                   scale=spec.scale, question=spec.question, languages=spec.languages, hours=spec.hours,
                   timezone=timezone, created_at="", credentials_at=None, revoked_at=None, last_seen=None,
                   last_state=None, cert_serial=None)
    data = device_config(probe, "mqtt://127.0.0.1:1883", tls=False, client_cert=False)
    data["broker"].pop("password_file")  # it does not exist yet; only its name matters here
    try:
        parse_config(data)
    except ConfigError as e:
        who = f"device {spec.device_id}" if spec.device_id else "new device"
        raise InvalidInput(f"{who} at {spec.site}/{spec.location}: {e.key}: {e.problem}") from None


def _timezone(inventory: Inventory, site: str) -> str:
    for s in inventory.sites():
        if s["id"] == site:
            return str(s["timezone"])
    return "UTC"


def create_device(inventory: Inventory, spec: DeviceSpec) -> Device:
    check_spec(spec, _timezone(inventory, spec.site))
    return inventory.create_device(spec)


def successor_spec(old: Device, device_id: str | None = None) -> DeviceSpec:
    """A new device with the old one's place and survey: what a swap installs."""
    return DeviceSpec(site=old.site, location=old.location, device_id=device_id, scale=old.scale,
                      question=dict(old.question), languages=old.languages, hours=dict(old.hours))


@dataclass(frozen=True)
class Row:
    line: int
    spec: DeviceSpec
    timezone: str


def read_rows(reader: Iterable[dict[str, str | None]], name: str) -> list[Row]:
    """CSV rows → device specs; the first bad row stops it with its line number and the problem."""
    rows: list[Row] = []
    for n, raw in enumerate(reader, start=2):  # line 1 is the header
        if n - 1 > MAX_ROWS:
            raise InvalidInput(f"{name}: more than {MAX_ROWS} rows; split the file")
        rec = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(rec.values()):
            continue
        try:
            if not rec.get("site") or not rec.get("location"):
                raise InvalidInput("site and location are required")
            questions = [f"{k[len('question_'):]}={v}" for k, v in rec.items() if k.startswith("question_") and v]
            spec = DeviceSpec(site=rec["site"], location=rec["location"], device_id=rec.get("id") or None,
                              scale=rec.get("scale") or "smiley4", question=parse_question(questions),
                              languages=parse_languages(rec.get("languages") or "en"),
                              hours=parse_hours(h for h in (rec.get("hours") or "").split(";") if h.strip()))
        except ProvisioningError as e:
            raise InvalidInput(f"{name}: line {n}: {e}") from None
        rows.append(Row(n, spec, rec.get("timezone") or "UTC"))
    if not rows:
        raise InvalidInput(f"{name}: no rows (the header needs at least: site,location)")
    return rows


def check_rows(inventory: Inventory, rows: list[Row], *, create_missing: bool) -> None:
    """Every row must be creatable: known (or creatable) site and location, unique id, a valid config."""
    sites = {s["id"]: s["timezone"] for s in inventory.sites()}
    locations = {(loc["site"], loc["id"]) for loc in inventory.locations()}
    taken = {d.device_id for d in inventory.devices()}
    seen: set[str] = set()
    for row in rows:
        spec, where = row.spec, f"line {row.line}"
        if spec.site not in sites and not create_missing:
            raise NotFound(f"{where}: site {spec.site!r} is not in the inventory (add it, or use --create-missing)")
        if (spec.site, spec.location) not in locations and not create_missing:
            raise NotFound(f"{where}: location {spec.site}/{spec.location} is not in the inventory "
                           "(add it, or use --create-missing)")
        if spec.device_id:
            if spec.device_id in taken or spec.device_id in seen:
                raise AlreadyExists(f"{where}: device id {spec.device_id!r} is already taken")
            seen.add(spec.device_id)
        try:
            check_spec(spec, sites.get(spec.site, row.timezone))
        except InvalidInput as e:
            raise InvalidInput(f"{where}: {e}") from None


def provision_rows(inventory: Inventory, rows: list[Row], *, out_root: Path | None, claims_csv: Path | None,
                   ttl: timedelta, create_missing: bool,
                   progress: Callable[[int], Any] | None = None) -> dict[str, Any]:
    """Create every row's device and its bundle (or claim code); the broker reloads once at the end."""
    known_sites = {s["id"] for s in inventory.sites()}
    known_locations = {(loc["site"], loc["id"]) for loc in inventory.locations()}
    made: list[dict[str, Any]] = []
    codes = io.StringIO()
    out = csv.writer(codes)
    out.writerow(["device", "site", "location", "claim_code", "expires_at"])
    try:
        for row in rows:
            spec = row.spec
            if create_missing and spec.site not in known_sites:
                inventory.add_site(spec.site, timezone=row.timezone)
                known_sites.add(spec.site)
            if create_missing and (spec.site, spec.location) not in known_locations:
                inventory.add_location(spec.site, spec.location)
                known_locations.add((spec.site, spec.location))
            dev = inventory.create_device(spec)
            entry: dict[str, Any] = {"device": dev.device_id, "site": dev.site, "location": dev.location}
            if out_root is not None:
                bundle = issue_bundle(inventory, dev.device_id, reload=False)
                write_bundle(bundle, out_root / dev.device_id)
                entry["out"] = str(out_root / dev.device_id)
            else:
                code = create_claim(inventory, dev.device_id, ttl)
                out.writerow([dev.device_id, dev.site, dev.location, code.code, code.expires_at.isoformat()])
            made.append(entry)
            if progress is not None:
                progress(1)
    finally:
        if claims_csv is not None and made:
            write_secret(claims_csv, codes.getvalue())  # claim codes are secrets until used
        if made:
            apply_to_broker(inventory)
    return {"created": len(made), "devices": made, "claims_csv": str(claims_csv) if claims_csv else None}
