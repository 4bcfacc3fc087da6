"""``smileloop central``: run the central service."""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path

import click

from central.notify import AppriseNotifier, Notifier
from central.service import CentralService
from central.store import CentralStore
from smileloop.mqtt import BrokerSettings


@click.command()
@click.option("--broker", "broker_url", default="mqtt://127.0.0.1:1883", show_default=True,
              envvar="SMILELOOP_BROKER", help="mqtt:// or mqtts:// URL (env SMILELOOP_BROKER).")
@click.option("--db", "db_path", default="central.db", show_default=True, type=click.Path(path_type=Path),
              help="SQLite file for ratings, alerts and rejected messages.")
@click.option("--username", envvar="SMILELOOP_BROKER_USERNAME")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--notify", "notify_urls", multiple=True, metavar="URL",
              help="apprise URL for every alert (repeatable): mailto://…, slack://…, ntfys://…, json://…")
@click.option("--client-id", default="smileloop-central", show_default=True)
@click.option("--share-group", help="Join an MQTT v5 shared subscription with other central workers.")
def central(broker_url: str, db_path: Path, username: str | None, password_file: Path | None,
            ca_file: Path | None, notify_urls: tuple[str, ...], client_id: str, share_group: str | None) -> None:
    """Run the central service: store every rating once, raise and deliver alerts.

    \b
    Example:
        smileloop central --broker mqtt://127.0.0.1:1883 --db central.db --notify json://localhost:8080/hook
    """
    settings = BrokerSettings.from_url(broker_url, username=username, ca_file=ca_file)
    settings = settings.with_password_file(password_file)
    notifiers: list[Notifier] = []
    if notify_urls:
        try:
            notifiers.append(AppriseNotifier(notify_urls))
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--notify") from None
    service = CentralService(CentralStore(db_path), settings, notifiers=notifiers, client_id=client_id,
                             share_group=share_group)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(f"central: {settings.redacted()} → {db_path}", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        service.run(stop)
