"""Central's commands: ``smileloop central`` (the service), ``alerts``, ``org`` and ``rules``.

A thin layer over :mod:`central.store`, :mod:`central.lifecycle`, :mod:`central.org` and :mod:`central.rules`;
errors raised on purpose (CentralError) become one line and an exit code in the root CLI. The ``alerts`` group
lives in :mod:`central.cli_alerts` (imported here: the root CLI finds every group in this module), what the
commands share in :mod:`central.cli_options`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Any

import click

from central.cli_alerts import alerts
from central.cli_options import checked_org, db_options, db_options_creating, echo_json, json_option, load_toml, org_of
from central.cli_org import by_option, org
from central.errors import RuleError
from central.notify import check_url
from central.org_admin import OrgAdmin
from central.rulebook import COMMON, RULES, RuleBook, coerce, validate_rules
from central.service import CentralService
from central.store import CentralStore
from smileloop_core.clock import SystemClock
from smileloop_core.mqtt import BrokerSettings
from smileloop_core.redact import redact_url

__all__ = ["alerts", "central", "org", "rules_cmd"]


# --- the service --------------------------------------------------------------------------------
@click.command()
@click.option("--broker", "broker_url", default="mqtt://127.0.0.1:1883", show_default=True,
              envvar="SMILELOOP_BROKER", help="mqtt:// or mqtts:// URL (env SMILELOOP_BROKER).")
@click.option("--db", "db_target", default="central.db", show_default=True, envvar="SMILELOOP_CENTRAL_DB",
              help="SQLite file, or a postgresql:// URL.")
@click.option("--schema", envvar="SMILELOOP_CENTRAL_SCHEMA", help="PostgreSQL schema.")
@click.option("--username", envvar="SMILELOOP_BROKER_USERNAME")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              envvar="SMILELOOP_BROKER_PASSWORD_FILE", help="The broker password, in a file (not in --broker).")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CA that signed the broker's certificate (mqtts://).")
@click.option("--cert-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Central's client certificate, where the broker asks for one (with --key-file).")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--notify", "notify_urls", multiple=True, metavar="URL", envvar="SMILELOOP_NOTIFY",
              help="apprise URL told of every alert, besides the org's contacts (repeatable; env SMILELOOP_NOTIFY, "
                   "space-separated). URLs hold tokens: prefer --notify-file.")
@click.option("--notify-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              envvar="SMILELOOP_NOTIFY_FILE",
              help="A file of apprise URLs, one per line (# comments), kept off the command line.")
@click.option("--org", "org_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Load this org tree (TOML) before starting.")
@click.option("--rules", "rules_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Load these rule settings (TOML) before starting.")
@click.option("--client-id", default="smileloop-central", show_default=True)
@click.option("--share-group", help="Join an MQTT v5 shared subscription with other central workers.")
def central(broker_url: str, db_target: str, schema: str | None, username: str | None, password_file: Path | None,
            ca_file: Path | None, cert_file: Path | None, key_file: Path | None, notify_urls: tuple[str, ...],
            notify_file: Path | None, org_file: Path | None, rules_file: Path | None, client_id: str,
            share_group: str | None) -> None:
    """Run the central service: store every rating once, raise, route and escalate alerts.

    \b
    Secrets stay off the command line (the process list shows it): the broker password in --password-file,
    notification URLs in --notify-file, a PostgreSQL password in ~/.pgpass or PGPASSWORD (or the whole URL in
    SMILELOOP_CENTRAL_DB). Nothing printed or logged shows a password or token.

    \b
    Example:
        SMILELOOP_CENTRAL_DB=postgresql://central@db/smileloop smileloop central \\
            --broker mqtts://broker:8883 --username central --password-file /etc/smileloop/central.pass \\
            --notify-file /etc/smileloop/notify.urls
        smileloop central --broker mqtt://127.0.0.1:1883 --db central.db
    """
    if (cert_file is None) != (key_file is None):
        raise click.BadParameter("give --cert-file and --key-file together", param_hint="--cert-file")
    settings = BrokerSettings.from_url(broker_url, username=username, ca_file=ca_file, cert_file=cert_file,
                                       key_file=key_file)
    settings = settings.with_password_file(password_file)
    if notify_file is not None:
        notify_urls = (*notify_urls, *_urls_in(notify_file))
    for url in notify_urls:
        try:
            check_url(url)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--notify") from None
    store = CentralStore(db_target, schema=schema)
    now = SystemClock().now()
    if org_file:
        store.put_document("org", checked_org(load_toml(org_file)), now)
    if rules_file:
        store.put_document("rules", validate_rules(load_toml(rules_file)), now)
    org_of(store)  # refuse a broken stored tree now, not at the first alert
    service = CentralService(store, settings, notify_urls=notify_urls, client_id=client_id, share_group=share_group)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(f"central: {settings.redacted()} → {redact_url(db_target)}", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        service.run(stop)
    store.close()


def _urls_in(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


# --- rules --------------------------------------------------------------------------------------
@click.group("rules")
def rules_cmd() -> None:
    """Alert rule settings: defaults, per site, per location.

    \b
    Example:
        smileloop rules list --site store-042 --location exit-north
        smileloop rules set store-042/exit-north negative_share threshold=0.4 min_responses=6
    """


@rules_cmd.command("list")
@db_options
@json_option
@click.option("--site")
@click.option("--location")
def rules_list(store: CentralStore, as_json: bool, site: str | None, location: str | None) -> None:
    """The settings in force for each rule (defaults, then site, then location).

    \b
    Example:
        smileloop rules list --site store-042 --json
    """
    book = RuleBook(store.document("rules")[0])
    data: dict[str, dict[str, Any]] = {
        name: {"summary": spec.summary, "severity": spec.severity, **book.params(name, site, location)}
            for name, spec in RULES.items()}
    if as_json:
        echo_json(data)
        return
    for name, p in data.items():
        settings = " ".join(f"{k}={v}" for k, v in p.items() if k not in ("summary", "severity"))
        click.echo(f"{name:<17} {settings}")


@rules_cmd.command("set")
@db_options_creating
@json_option
@by_option
@click.argument("scope")
@click.argument("rule", metavar="RULE")
@click.argument("settings", nargs=-1, required=True, metavar="KEY=VALUE...")
def rules_set(store: CentralStore, as_json: bool, by: str, scope: str, rule: str, settings: tuple[str, ...]) -> None:
    """Change settings of one rule for a scope: default, SITE, or SITE/LOCATION.

    \b
    Example:
        smileloop rules set store-042 silence min_silence=7200 factor=3
        smileloop rules set default negative_rating cooldown=600
    """
    if rule not in RULES:
        raise RuleError(f"{rule!r} is not a rule (known: {', '.join(RULES)})")
    doc = store.document("rules")[0]
    allowed = {**COMMON, **RULES[rule].defaults}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise RuleError(f"{item!r}: write settings as KEY=VALUE")
        if key not in allowed:
            raise RuleError(f"{scope}.{rule}.{key}: unknown setting (known: {', '.join(sorted(allowed))})")
        doc.setdefault(scope, {}).setdefault(rule, {})[key] = coerce(f"{scope}.{rule}.{key}", allowed[key], value)
    version = OrgAdmin(store, by).set_rules(validate_rules(doc))
    if as_json:
        echo_json({"version": version, "scope": scope, "rule": rule, "settings": doc[scope][rule]})
        return
    click.echo(f"rules version {version}: {scope} {rule} " + " ".join(settings))


@rules_cmd.command("load")
@db_options_creating
@json_option
@by_option
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def rules_load(store: CentralStore, as_json: bool, by: str, path: Path) -> None:
    """Replace all rule settings with a TOML file (checked first).

    \b
    Example:
        smileloop rules load rules.toml
    """
    doc = validate_rules(load_toml(path))
    version = OrgAdmin(store, by).set_rules(doc)
    if as_json:
        echo_json({"version": version, "scopes": sorted(doc)})
        return
    click.echo(f"rules version {version}: {len(doc)} scope(s)")
