"""What every ``smileloop provision`` command shares: the group, ``--json``, ``--show-secret``, the inventory."""

from __future__ import annotations

import functools
import getpass
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from provisioning.broker import BrokerDir, broker_dir
from provisioning.central_org import CentralOrg
from provisioning.errors import InvalidInput
from provisioning.inventory import Inventory
from smileloop_core.mqtt import BrokerSettings

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
@click.option("--central-db", envvar="SMILELOOP_CENTRAL_DB",
              help="Central's store (SQLite file or postgresql:// URL; env SMILELOOP_CENTRAL_DB): sites, hours, "
                   "locations and devices registered here go into its organisation too.")
@click.option("--central-schema", envvar="SMILELOOP_CENTRAL_SCHEMA", help="PostgreSQL schema of central's store.")
@click.option("--by", default=lambda: os.environ.get("SMILELOOP_BY") or getpass.getuser(),
              show_default="$SMILELOOP_BY or your login name", help="Who makes the change (central's audit).")
@click.pass_context
def provision(ctx: click.Context, inventory_path: Path, central_db: str | None, central_schema: str | None,
              by: str) -> None:
    """Register sites, locations and devices; issue, rotate and revoke their broker credentials.

    \b
    Example:
        smileloop provision broker-config --out /etc/smileloop/broker --port 1883 --tls-port 8883
        smileloop provision site add store-042 --timezone Europe/Stockholm
        smileloop provision location add store-042 exit-north
        smileloop provision device new --site store-042 --location exit-north --out /media/sdcard
    """
    ctx.obj = inventory_path  # opened by each command that needs it, so --help never creates a file
    ctx.meta["central_org"] = CentralOrg(central_db, by, central_schema) if central_db else None


def central_org() -> CentralOrg | None:
    """Central's organisation, when ``--central-db`` names it; changes are mirrored there."""
    org: CentralOrg | None = click.get_current_context().meta.get("central_org")
    return org


def pass_inventory(f: Callable[..., Any]) -> Callable[..., Any]:
    """Open the inventory named by ``--inventory`` for one command, and close it after; a missing file is an
    error (exit 2) — reading commands never create an empty inventory by mistake."""
    return _with_inventory(f, create=False)


def pass_inventory_creating(f: Callable[..., Any]) -> Callable[..., Any]:
    """:func:`pass_inventory` for the commands that set an installation up (``broker-config``, ``site add``)."""
    return _with_inventory(f, create=True)


def _with_inventory(f: Callable[..., Any], *, create: bool) -> Callable[..., Any]:
    @functools.wraps(f)
    def with_inventory(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        path = Path(ctx.obj)
        if not create and not path.is_file():
            raise InvalidInput(f"no inventory at {path} (check --inventory or SMILELOOP_INVENTORY; "
                               "'smileloop provision broker-config' or 'site add' creates one)")
        inventory = Inventory(path)
        try:
            return f(inventory, *args, **kwargs)
        finally:
            inventory.close()
            org = central_org()
            if org is not None:
                org.close()

    return with_inventory


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

