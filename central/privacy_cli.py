"""``smileloop privacy`` (a visitor's data: export, erase, the devices' part, the audit), ``smileloop backup``
and ``smileloop restore``: a thin layer over :mod:`central.privacy` and :mod:`central.backup` (docs/PRIVACY.md)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import click

from central import privacy
from central.backup import BackupResult, backup_central, backup_device, restore_central, restore_device
from central.cli_options import db_options, echo_json, json_option
from central.cli_org import by_option
from central.fleet import publish
from central.fleet_cli import _broker_options
from central.store import CentralStore
from device import load_config
from smileloop_core.clock import SystemClock
from smileloop_core.mqtt import BrokerSettings
from smileloop_core.redact import redact_url

__all__ = ["backup", "privacy_cmd", "restore"]


def _subject(contact: str | None, rating: str | None) -> privacy.Subject:
    if (contact is None) == (rating is None):
        raise click.UsageError("give --contact ADDRESS or --rating ID (one of them)")
    try:
        return privacy.Subject(contact=contact, rating_id=rating)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--contact") from None


def _subject_options(fn: click.decorators.FC) -> click.decorators.FC:
    fn = click.option("--rating", metavar="ID", help="One rating, by its id.")(fn)
    return click.option("--contact", metavar="ADDRESS",
                        help="The visitor's phone number or e-mail address, as they gave it.")(fn)


@click.group("privacy")
def privacy_cmd() -> None:
    """A visitor's data: what is held about them (export), forgetting it (erase), here and on the kiosks.

    \b
    Example:
        smileloop privacy export --db central.db --contact anna@example.com > anna.json
        smileloop privacy erase --db central.db --contact anna@example.com --broker mqtt://broker:1883 --wait 60
    """


@privacy_cmd.command("export")
@db_options
@by_option
@_subject_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON here (default: stdout).")
def export_cmd(store: CentralStore, by: str, contact: str | None, rating: str | None, out: Path | None) -> None:
    """Everything central holds about an address (or one rating), per table, as JSON; audited.

    \b
    Example:
        smileloop privacy export --db central.db --contact "+46 70 123 45 67" --out request-118.json
        smileloop privacy export --db postgresql://central@db/smileloop --rating 0b6f7d3e-4c1a-4d5e-9a53-6a1f0f6f2a10
    """
    data = privacy.export(store, _subject(contact, rating), SystemClock().now(), by)
    if out is None:
        echo_json(data)
        return
    out.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    out.chmod(0o600)
    click.echo(f"{data['total']} row(s) written to {out}", err=True)


@privacy_cmd.command("erase")
@db_options
@by_option
@json_option
@_broker_options
@_subject_options
@click.option("--no-push", is_flag=True, help="Erase in central's store only; send the devices nothing now "
              "(`smileloop privacy devices --push` sends it later).")
@click.option("--wait", "wait_seconds", type=float, metavar="SECONDS",
              help="Wait until each device reports its part done (central must be running).")
def erase_cmd(store: CentralStore, by: str, as_json: bool, broker_url: str, username: str | None,
              password_file: Path | None, ca_file: Path | None, cert_file: Path | None, key_file: Path | None,
              contact: str | None, rating: str | None, no_push: bool, wait_seconds: float | None) -> None:
    """Forget an address (or one rating's contact and comment) in every table, audited, and ask the devices
    that sent those ratings to forget them too.

    \b
    Central's part is one transaction. Each device that sent a rating gets a retained erase request on its
    erase topic (docs/PROTOCOL.md) and reports it done on its status topic; exit 1 if a device has not
    answered within --wait (the request stays; it is done when the device next connects).
    \b
    Example:
        smileloop privacy erase --db central.db --contact anna@example.com --broker mqtt://127.0.0.1:1883 --wait 60
        smileloop privacy erase --db central.db --rating 0b6f7d3e-4c1a-4d5e-9a53-6a1f0f6f2a10 --no-push
    """
    done = privacy.erase(store, _subject(contact, rating), SystemClock().now(), by)
    if not no_push and done.requests:
        settings = BrokerSettings.from_url(broker_url, username=username, ca_file=ca_file, cert_file=cert_file,
                                           key_file=key_file).with_password_file(password_file)
        _push(store, settings, [(r.site, r.device_id) for r in done.requests])
    left = privacy.await_devices(store, done.requests, wait_seconds) if wait_seconds is not None and not no_push \
        else done.requests
    if as_json:
        echo_json({**done.as_dict(), "devices_pending": [r.device_id for r in left]})
    else:
        click.echo(f"erased {done.total} row(s): " + ", ".join(f"{p} {n}" for p, n in done.rows.items() if n))
        for r in done.requests:
            state = "pending" if r in left else "done"
            click.echo(f"device {r.site}/{r.device_id}: {len(r.rating_ids)} rating(s), {state}")
    if wait_seconds is not None and left:
        raise click.exceptions.Exit(1)


@privacy_cmd.command("devices")
@db_options
@json_option
@_broker_options
@click.option("--push", "push_again", is_flag=True, help="Publish the pending requests again.")
def devices_cmd(store: CentralStore, as_json: bool, broker_url: str, username: str | None,
                password_file: Path | None, ca_file: Path | None, cert_file: Path | None, key_file: Path | None,
                push_again: bool) -> None:
    """Erase requests sent to devices: done, or pending (from the statuses central keeps).

    \b
    Example:
        smileloop privacy devices --db central.db
        smileloop privacy devices --db central.db --push --broker mqtts://broker:8883 --username central
    """
    from central.store_privacy import PrivacyStore

    privacy.reconcile(store, SystemClock().now())
    requests = PrivacyStore(store).requests()
    pending = [(r.site, r.device_id) for r in requests if r.done_at is None]
    if push_again and pending:
        settings = BrokerSettings.from_url(broker_url, username=username, ca_file=ca_file, cert_file=cert_file,
                                           key_file=key_file).with_password_file(password_file)
        _push(store, settings, pending)
    if as_json:
        echo_json([{"request": r.id, "site": r.site, "device": r.device_id, "ratings": len(r.rating_ids),
                    "created_at": r.created_at, "done_at": r.done_at, "erased": r.erased} for r in requests])
        return
    for r in requests:
        click.echo(f"{r.created_at}  {r.site}/{r.device_id}  {len(r.rating_ids)} rating(s)  "
                   + (f"done {r.done_at}" if r.done_at else "pending"))


@privacy_cmd.command("audit")
@db_options
@json_option
@click.option("--limit", type=int, default=50, show_default=True)
def audit_cmd(store: CentralStore, as_json: bool, limit: int) -> None:
    """Who exported or erased what, when: the subject as a hash of the address, never the address.

    \b
    Example:
        smileloop privacy audit --db central.db --limit 20
    """
    from central.store_privacy import PrivacyStore

    rows = PrivacyStore(store).audit_entries(limit)
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['at']}  {r['actor']:<12} {r['action']:<7} {r['subject']}  {r['detail'].get('rows', {})}")


def _push(store: CentralStore, settings: BrokerSettings, devices: list[tuple[str, str]]) -> None:
    publish(settings, privacy.erase_messages(store, devices), client_id=f"smileloop-privacy-{uuid.uuid4().hex[:8]}")


# --- backups ----------------------------------------------------------------------------------------------------
def _store_options(fn: click.decorators.FC) -> click.decorators.FC:
    fn = click.option("--device-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                      help="A kiosk's device.toml: its device store instead of central's.")(fn)
    fn = click.option("--schema", envvar="SMILELOOP_CENTRAL_SCHEMA", help="PostgreSQL schema (default: all).")(fn)
    return click.option("--db", "db_target", default="central.db", show_default=True, envvar="SMILELOOP_CENTRAL_DB",
                        help="Central's SQLite file, or a postgresql:// URL.")(fn)


def _report(verb: str, result: BackupResult, as_json: bool) -> None:
    if as_json:
        echo_json(result.__dict__)
        return
    rows = sum(result.tables.values())
    click.echo(f"{verb} {result.kind} {redact_url(result.path)}: {result.bytes} bytes, integrity {result.integrity}"
               + (f", {rows} rows in {len(result.tables)} tables" if result.tables else ""))


@click.command("backup")
@_store_options
@json_option
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The backup file.")
def backup(db_target: str, schema: str | None, device_config: Path | None, as_json: bool, out: Path) -> None:
    """Back up central's store (SQLite online backup, or pg_dump) or a kiosk's, while they run.

    \b
    Example:
        smileloop backup --db central.db --out central-2026-11-24.db
        smileloop backup --db postgresql://central@db/smileloop --schema smileloop --out central.dump
        smileloop backup --device-config /etc/smileloop/device.toml --out kiosk-1.db
    """
    if device_config is not None:
        _report("backed up", backup_device(load_config(device_config).storage.path, out), as_json)
    else:
        _report("backed up", backup_central(db_target, out, schema=schema), as_json)


@click.command("restore")
@_store_options
@json_option
@click.option("--from", "source", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file `smileloop backup` made.")
@click.option("--force", is_flag=True, help="Overwrite an existing SQLite file.")
def restore(db_target: str, schema: str | None, device_config: Path | None, as_json: bool, source: Path,
            force: bool) -> None:
    """Restore a backup into central's store or a kiosk's (stop central, or the kiosk and its agent, first).

    \b
    Example:
        smileloop restore --db central.db --from central-2026-11-24.db --force
        smileloop restore --db postgresql://central@db/smileloop --schema smileloop --from central.dump
        smileloop restore --device-config /etc/smileloop/device.toml --from kiosk-1.db
    """
    if device_config is not None:
        _report("restored", restore_device(load_config(device_config).storage.path, source, force=force), as_json)
    else:
        _report("restored", restore_central(db_target, source, schema=schema, force=force), as_json)
