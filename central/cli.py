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
from central.nats_source import DURABLE, NatsSource
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
              envvar="SMILELOOP_BROKER",
              help="mqtt:// or mqtts:// URL, or several separated by commas: central moves to the next when one "
                   "fails (env SMILELOOP_BROKER). A NATS node's MQTT listener needs ?protocol=3.1.1.")
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
@click.option("--nats", "nats_urls", metavar="URLS", envvar="SMILELOOP_NATS",
              help="Take ratings from a NATS cluster's JetStream instead of the MQTT subscription: nats:// (or "
                   "tls://) URLs separated by commas, with --username/--password-file (docs/SCALE.md).")
@click.option("--nats-durable", default=DURABLE, show_default=True,
              help="The durable consumer every worker shares.")
@click.option("--nats-replicas", type=click.IntRange(1, 5), default=3, show_default=True,
              help="Copies of the ratings stream, when this worker is the one to make it.")
@click.option("--nats-ack-wait", type=click.FloatRange(0.5, 3600), default=30.0, show_default=True,
              help="Seconds before a message a worker took and did not acknowledge goes to a worker again.")
def central(broker_url: str, db_target: str, schema: str | None, username: str | None, password_file: Path | None,
            ca_file: Path | None, cert_file: Path | None, key_file: Path | None, notify_urls: tuple[str, ...],
            notify_file: Path | None, org_file: Path | None, rules_file: Path | None, client_id: str,
            share_group: str | None, nats_urls: str | None, nats_durable: str, nats_replicas: int,
            nats_ack_wait: float) -> None:
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
        smileloop central --client-id central-2 --username central --password-file central.pass \
            --broker "mqtt://n1:1883?protocol=3.1.1,mqtt://n2:1883?protocol=3.1.1" \
            --nats nats://n1:4222,nats://n2:4222,nats://n3:4222
    """
    if (cert_file is None) != (key_file is None):
        raise click.BadParameter("give --cert-file and --key-file together", param_hint="--cert-file")
    settings = [BrokerSettings.from_url(url.strip(), username=username, ca_file=ca_file, cert_file=cert_file,
                                        key_file=key_file).with_password_file(password_file)
                for url in broker_url.split(",") if url.strip()]
    if not settings:
        raise click.BadParameter("give at least one broker URL", param_hint="--broker")
    source = None
    if nats_urls:
        if share_group:
            raise click.BadParameter("workers on NATS share the JetStream consumer, not an MQTT group",
                                     param_hint="--share-group")
        servers = [u.strip() for u in nats_urls.split(",") if u.strip()]
        bad = [u for u in servers if not u.startswith(("nats://", "tls://"))]
        if bad or not servers:
            raise click.BadParameter(f"give nats:// or tls:// URLs (not {', '.join(bad) or 'nothing'})",
                                     param_hint="--nats")
        source = NatsSource(servers, user=settings[0].username, password=settings[0].password, ca_file=ca_file,
                            cert_file=cert_file, key_file=key_file, durable=nats_durable, replicas=nats_replicas,
                            ack_wait=nats_ack_wait, client_name=client_id)
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
    service = CentralService(store, settings, notify_urls=notify_urls, client_id=client_id, share_group=share_group,
                             source=source)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    via = f" + {nats_urls} ({nats_durable})" if nats_urls else ""
    click.echo(f"central: {', '.join(s.redacted() for s in settings)}{via} → {redact_url(db_target)}", err=True)
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
