"""``smileloop fleet``: every device's state (``status``) and config pushes to a site or location (``push``).

A thin layer over :mod:`central.fleet`; docs/FLEET.md has the walk-through. Mistakes (an unknown device, a
setting the device would refuse) are one line and exit 2 before anything is sent; a broker that cannot be
reached, or devices that reject a push or do not answer within ``--wait``, exit 1.
"""

from __future__ import annotations

import getpass
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from central import fleet
from central.cli_options import db_options, echo_json, json_option, org_of
from central.errors import FleetError
from central.store import CentralStore
from smileloop_core.clock import SystemClock
from smileloop_core.mqtt import BrokerSettings
from smileloop_core.pin import hash_pin

__all__ = ["fleet_cmd"]


@click.group("fleet")
def fleet_cmd() -> None:
    """The devices of the organisation: their state, and settings pushed to them.

    \b
    Example:
        smileloop fleet status --site store-042
        smileloop fleet push --site store-042 --location exit-north --question en="How was it?" --wait 60
    """


@fleet_cmd.command("status")
@db_options
@json_option
@click.option("--site", help="Only this site.")
@click.option("--location", help="Only this location.")
@click.option("--state", type=click.Choice(["online", "offline", "silent", "never"]),
              help="Only devices in this state ('silent': says online, but no status for device_offline.stale; "
                   "'never': in the org tree, never heard from).")
def status(store: CentralStore, as_json: bool, site: str | None, location: str | None, state: str | None) -> None:
    """Every device: online/offline, last seen, backlog, disk, software and config version, clock offset.

    \b
    From the statuses central keeps (it must be running to keep them current); devices of the org tree
    never heard from show as "never seen".
    \b
    Example:
        smileloop fleet status --db central.db
        smileloop fleet status --site store-042 --state offline --json
    """
    wanted = "never seen" if state == "never" else state
    rows = fleet.fleet_status(store, org_of(store), SystemClock().now(), site=site, location=location, state=wanted)
    if as_json:
        echo_json([r.as_dict() for r in rows])
        return
    if not rows:
        click.echo("no devices")
        return
    head = ("SITE", "DEVICE", "LOCATION", "STATE", "LAST SEEN", "BACKLOG", "OLDEST UNSENT", "DISK MB", "SOFTWARE",
            "CONFIG", "CLOCK S")
    table = [head] + [(r.site, r.device, r.location or "-", r.state, r.last_seen or "-", _n(r.backlog),
                       r.oldest_unsent or "-", _n(r.disk_free_mb), r.software or "-", _config(r),
                       _n(r.clock_offset)) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _config(r: fleet.DeviceRow) -> str:
    text = _n(r.config_version)
    last = r.config or {}
    if last.get("state") == "rejected":
        text += f" (v{last.get('version')} rejected)"
    return text


def _broker_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The broker options of ``smileloop central``, for the commands that publish."""
    path = click.Path(exists=True, dir_okay=False, path_type=Path)
    for option in reversed([
        click.option("--broker", "broker_url", default="mqtt://127.0.0.1:1883", show_default=True,
                     envvar="SMILELOOP_BROKER", help="mqtt:// or mqtts:// URL (env SMILELOOP_BROKER)."),
        click.option("--username", envvar="SMILELOOP_BROKER_USERNAME"),
        click.option("--password-file", type=path, envvar="SMILELOOP_BROKER_PASSWORD_FILE",
                     help="The broker password, in a file (not in --broker)."),
        click.option("--ca-file", type=path, help="CA that signed the broker's certificate (mqtts://)."),
        click.option("--cert-file", type=path, help="A client certificate, where the broker asks for one."),
        click.option("--key-file", type=path),
    ]):
        fn = option(fn)
    return fn


def _pairs(values: tuple[str, ...], option: str, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise FleetError(f"{option} {item!r}: write it as {what}")
        out[key.strip()] = value
    return out


def _words(text: str | None) -> list[str] | None:
    return None if text is None else [w.strip() for w in text.split(",") if w.strip()]


def build_tables(*, question: tuple[str, ...] = (), scale: str | None = None, reasons_negative: str | None = None,
                 reasons_positive: str | None = None, languages: str | None = None, hours: tuple[str, ...] = (),
                 timezone: str | None = None, idle_reset: float | None = None,
                 response_interval: float | None = None, pin_hash: str | None = None) -> dict[str, Any]:
    """The tables of a push from the command's options; only what was given (the rest stays as it is)."""
    survey: dict[str, Any] = {}
    if question:
        survey["question"] = _pairs(question, "--question", 'LANG="text", e.g. en="How was it?"')
    for key, value in (("scale", scale), ("reasons_negative", _words(reasons_negative)),
                       ("reasons_positive", _words(reasons_positive)), ("languages", _words(languages)),
                       ("idle_reset", idle_reset), ("response_interval", response_interval)):
        if value is not None:
            survey[key] = value
    days: dict[str, Any] = {}
    for day, spans in _pairs(hours, "--hours", "DAY=HH:MM-HH:MM[,HH:MM-HH:MM] or DAY=closed").items():
        parts = _words(spans) or [spans]
        days[day] = parts[0] if len(parts) == 1 else parts
    if timezone is not None:
        days["timezone"] = timezone
    tables = {"survey": survey, "hours": days, "staff": {"pin_hash": pin_hash} if pin_hash else {}}
    return {name: table for name, table in tables.items() if table}


@fleet_cmd.command("push")
@db_options
@json_option
@_broker_options
@click.option("--site", required=True, help="The site whose devices get the push.")
@click.option("--location", help="Only the devices at this location.")
@click.option("--device", help="Only this device.")
@click.option("--question", multiple=True, metavar="LANG=TEXT", help='The question, per language (repeatable).')
@click.option("--scale", help="smiley4, smiley5, nps or csat5.")
@click.option("--reasons-negative", metavar="A,B,…", help="Reasons offered after a negative rating.")
@click.option("--reasons-positive", metavar="A,B,…", help="Reasons offered after a positive rating.")
@click.option("--languages", metavar="A,B,…", help="Languages offered, the first the default.")
@click.option("--hours", multiple=True, metavar="DAY=SPANS",
              help="Opening hours of a day: mon=08:00-20:00, sat=10:00-12:00,13:00-16:00, sun=closed (repeatable).")
@click.option("--timezone", help="The IANA time zone of the hours, e.g. Europe/Stockholm.")
@click.option("--idle-reset", type=float, help="Seconds without a touch before the kiosk starts over.")
@click.option("--response-interval", type=float, help="Seconds within which a second tap is flagged a repeat.")
@click.option("--pin-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A new staff PIN, in a file; only its salted hash is stored and sent.")
@click.option("--new-pin", is_flag=True, help="Ask for a new staff PIN (hidden, twice).")
@click.option("--wait", "wait_seconds", type=float, metavar="SECONDS",
              help="Wait until each device reports the push applied or rejected (central must be running).")
@click.option("--dry-run", is_flag=True, help="Print the JSON it would publish, per topic; send nothing.")
@click.option("--by", default=lambda: os.environ.get("USER") or getpass.getuser(), show_default="$USER",
              help="Who pushes, kept with the push.")
def push(store: CentralStore, as_json: bool, broker_url: str, username: str | None, password_file: Path | None,
         ca_file: Path | None, cert_file: Path | None, key_file: Path | None, site: str, location: str | None,
         device: str | None, question: tuple[str, ...], scale: str | None, reasons_negative: str | None,
         reasons_positive: str | None, languages: str | None, hours: tuple[str, ...], timezone: str | None,
         idle_reset: float | None, response_interval: float | None, pin_file: Path | None, new_pin: bool,
         wait_seconds: float | None, dry_run: bool, by: str) -> None:
    """Push settings to the devices of a site (or a location, or one device), versioned and retained.

    \b
    Checked first with the rules the device applies: a setting it would refuse stops the push (exit 2)
    before anything is sent. Settings not given keep their values on the device.
    \b
    Example:
        smileloop fleet push --site store-042 --location exit-north \\
            --question en="How was it?" --question sv="Hur var det?" --pin-file new.pin --wait 60
        smileloop fleet push --site store-042 --hours sun=closed --hours sat=10:00-16:00 \\
            --timezone Europe/Stockholm --dry-run
    """
    if (cert_file is None) != (key_file is None):
        raise click.BadParameter("give --cert-file and --key-file together", param_hint="--cert-file")
    if pin_file is not None and new_pin:
        raise click.BadParameter("give --pin-file or --new-pin, not both", param_hint="--new-pin")
    pin = pin_file.read_text().strip() if pin_file else None
    if new_pin:
        pin = click.prompt("New staff PIN", hide_input=True, confirmation_prompt=True)
    tables = build_tables(question=question, scale=scale, reasons_negative=reasons_negative,
                          reasons_positive=reasons_positive, languages=languages, hours=hours, timezone=timezone,
                          idle_reset=idle_reset, response_interval=response_interval,
                          pin_hash=hash_pin(pin) if pin is not None else None)
    plan = fleet.plan_push(store, org_of(store), tables, site, location, device)
    if dry_run:
        echo_json({topic: json.loads(payload) for topic, payload in plan.messages().items()})
        return
    settings = BrokerSettings.from_url(broker_url, username=username, ca_file=ca_file, cert_file=cert_file,
                                       key_file=key_file).with_password_file(password_file)
    fleet.record(store, plan, SystemClock().now(), by)
    fleet.publish(settings, plan.messages(), client_id=f"smileloop-fleet-{uuid.uuid4().hex[:8]}")
    if wait_seconds is None:
        if as_json:
            echo_json({"version": plan.version, "site": site, "devices": list(plan.devices)})
        else:
            click.echo(f"config version {plan.version} pushed to {len(plan.devices)} device(s) at {site}: "
                       f"{', '.join(plan.devices)}")
        return
    if not as_json:
        click.echo(f"config version {plan.version} pushed to {len(plan.devices)} device(s) at {site}; "
                   f"waiting up to {wait_seconds:g}s for their answers")
    answers = fleet.await_answers(store, plan, wait_seconds)
    if as_json:
        echo_json({"version": plan.version, "site": site,
                   "devices": [{"device": a.device, "outcome": a.outcome, "reason": a.reason} for a in answers]})
    else:
        for a in answers:
            click.echo(f"{a.device}  {a.outcome}" + (f": {a.reason}" if a.reason else ""))
    if any(a.outcome != "applied" for a in answers):
        raise click.exceptions.Exit(1)
