"""``smileloop alerts``: list, show, ack, resolve and reopen alerts (a thin layer over :mod:`central.lifecycle`)."""

from __future__ import annotations

import json
from typing import Any

import click

from central import lifecycle
from central.cli_options import db_options, echo_json, json_option, org_of
from central.notify import Dispatcher, deliveries_of
from central.rulebook import RULES
from central.store import CentralStore
from smileloop_core.clock import SystemClock


@click.group()
def alerts() -> None:
    """See and work alerts: list, show, ack, resolve, reopen.

    \b
    Example:
        smileloop alerts list --state open
        smileloop alerts ack 3f2a9c1e --by anna
        smileloop alerts resolve 3f2a9c1e --by anna --root-cause "one till open" --action "opened till 2"
    """


@alerts.command("list")
@db_options
@json_option
@click.option("--state", type=click.Choice(["open", "acknowledged", "resolved", "live"]),
              help="Only alerts in this state (live = open or acknowledged).")
@click.option("--site")
@click.option("--kind", type=click.Choice(sorted(RULES)))
@click.option("--limit", default=50, show_default=True)
def alerts_list(store: CentralStore, as_json: bool, state: str | None, site: str | None, kind: str | None,
                limit: int) -> None:
    """List alerts, newest first.

    \b
    Example:
        smileloop alerts list --state live --site store-042 --json
    """
    rows = store.alerts(state=state, site=site, kind=kind, limit=limit)
    if as_json:
        echo_json(rows)
        return
    for a in rows:
        where = f"{a['site']}/{a.get('location') or a.get('device_id') or '-'}"
        parent = a["parent_id"]
        grouped = f" (grouped under {parent[:8]})" if parent else ""
        click.echo(f"{a['id'][:8]}  {a['state']:<12} {a['kind']:<16} {where:<28} {a['opened_at']}  "
                   f"{a['title']}{grouped}")


@alerts.command("show")
@db_options
@json_option
@click.argument("alert_id")
def alerts_show(store: CentralStore, as_json: bool, alert_id: str) -> None:
    """One alert with its audit trail and every delivery attempt.

    \b
    Example:
        smileloop alerts show 3f2a9c1e
    """
    alert = store.alert(alert_id)
    audit, deliveries = store.audit_trail(alert["id"]), deliveries_of(store, alert["id"])
    if as_json:
        echo_json({**alert, "audit": audit, "deliveries": deliveries})
        return
    row: dict[str, Any] = dict(alert)
    for key in ("id", "kind", "state", "site", "location", "device_id", "title", "opened_at", "level", "hits",
                "acked_by", "acked_at", "resolved_by", "resolved_at", "root_cause", "action"):
        if row.get(key) not in (None, ""):
            click.echo(f"{key:>12}: {row[key]}")
    click.echo(f"{'detail':>12}: {json.dumps(alert['detail'], ensure_ascii=False)}")
    click.echo("audit:")
    for a in audit:
        click.echo(f"  {a['at']}  {a['actor']:<10} {a['action']:<12} {json.dumps(a['note']) if a['note'] else ''}")
    click.echo("deliveries:")
    for d in deliveries:
        click.echo(f"  {d['purpose']:<14} {d['contact']:<16} {d['url']:<32} {d['state']} after {d['attempts']} "
                   f"attempt(s)")


@alerts.command("ack")
@db_options
@json_option
@click.argument("alert_id")
@click.option("--by", required=True, help="Who takes it (recorded in the audit).")
@click.option("--note")
def alerts_ack(store: CentralStore, as_json: bool, alert_id: str, by: str, note: str | None) -> None:
    """Acknowledge: you have seen it and own it.

    \b
    Example:
        smileloop alerts ack 3f2a9c1e --by anna
    """
    alert = lifecycle.acknowledge(store, alert_id, by, SystemClock().now(), note)
    echo_json(alert) if as_json else click.echo(f"{alert['id'][:8]} acknowledged by {alert['acked_by']}")


@alerts.command("resolve")
@db_options
@json_option
@click.argument("alert_id")
@click.option("--by", required=True)
@click.option("--root-cause", required=True, help="Why it happened.")
@click.option("--action", required=True, help="What was done about it.")
@click.option("--action-sv", help="The action worded in Swedish for Swedish kiosks (default: --action as typed).")
@click.option("--outcome", help="The 'you said, we did' text for the kiosks (default: built from reason and action).")
@click.option("--no-outcome", is_flag=True, help="Do not tell the kiosks.")
def alerts_resolve(store: CentralStore, as_json: bool, alert_id: str, by: str, root_cause: str, action: str,
                   action_sv: str | None, outcome: str | None, no_outcome: bool) -> None:
    """Resolve with root cause and action; the kiosks show "you said, we did".

    \b
    Example:
        smileloop alerts resolve 3f2a9c1e --by anna --root-cause "one till open" --action "opened a second till"
    """
    dispatcher = Dispatcher(store, lambda: org_of(store))
    alert = lifecycle.resolve(store, alert_id, by, root_cause, action, SystemClock().now(), outcome=outcome,
                              publish=not no_outcome, dispatcher=dispatcher,
                              actions={"sv": action_sv} if action_sv else None)
    echo_json(alert) if as_json else click.echo(f"{alert['id'][:8]} resolved by {alert['resolved_by']}")


@alerts.command("reopen")
@db_options
@json_option
@click.argument("alert_id")
@click.option("--by", required=True)
@click.option("--why", required=True)
def alerts_reopen(store: CentralStore, as_json: bool, alert_id: str, by: str, why: str) -> None:
    """Reopen a resolved alert: it came back, or the fix did not hold.

    \b
    Example:
        smileloop alerts reopen 3f2a9c1e --by cx-team --why "queue long again on Saturday"
    """
    dispatcher = Dispatcher(store, lambda: org_of(store))
    alert = lifecycle.reopen(store, alert_id, by, why, SystemClock().now(), dispatcher=dispatcher)
    echo_json(alert) if as_json else click.echo(f"{alert['id'][:8]} reopened ({alert['reopened']} time(s))")
