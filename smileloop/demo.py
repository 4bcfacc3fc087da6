"""``smileloop demo``: the whole loop on this machine with nothing configured.

A private Mosquitto on a free loopback port, central with a SQLite file, the web console beside it (its URL
and a demo login are printed), one simulated kiosk tapping a realistic mix, and its sync agent. Each alert is
printed as it fires, with the time from tap to alert. Ctrl-C (or ``--duration``) stops all of it cleanly.
"""

from __future__ import annotations

import logging
import random
import secrets
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from central import CentralService, CentralStore
from device import MIX, DeviceStore, Recorder, parse_config
from smileloop_core.clock import parse_utc
from smileloop_core.embedded_broker import EmbeddedBroker
from smileloop_core.mosquitto import Mosquitto, mosquitto_binary
from smileloop_core.mqtt import BrokerSettings
from sync_agent import SyncAgent

FACES = {1: "😠", 2: "🙁", 3: "🙂", 4: "😄"}


@click.command()
@click.option("--duration", type=click.FloatRange(min=1), help="Stop after this many seconds (default: Ctrl-C).")
@click.option("--rate", type=click.FloatRange(min=0.05, max=200), default=0.5, show_default=True,
              help="Visitor taps per second.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the databases here (default: a temporary folder).")
@click.option("--seed", type=int, help="Random seed for the visitor mix.")
@click.option("--console-port", type=click.IntRange(0, 65535), default=8400, show_default=True,
              help="Serve the web console on 127.0.0.1 at this port (0: no console).")
@click.option("--broker", "broker_kind", type=click.Choice(["auto", "mosquitto", "embedded"]), default="auto",
              show_default=True, help="auto: a private Mosquitto if installed, else the embedded amqtt broker.")
def demo(duration: float | None, rate: float, workdir: Path | None, seed: int | None, console_port: int,
         broker_kind: str) -> None:
    """Run the whole loop on this machine: broker, central, a kiosk and its sync agent.

    \b
    Example:
        smileloop demo --duration 30
    """
    work = workdir or Path(tempfile.mkdtemp(prefix="smileloop-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    logging.getLogger("smileloop.alerts").setLevel(logging.ERROR)  # alerts are printed below instead
    stop = threading.Event()
    use_mosquitto = broker_kind == "mosquitto" or (broker_kind == "auto" and mosquitto_binary() is not None)
    broker_cm: Mosquitto | EmbeddedBroker = Mosquitto(work / "broker") if use_mosquitto else EmbeddedBroker()
    with broker_cm as broker:
        click.echo(f"broker   {'mosquitto' if use_mosquitto else 'embedded amqtt (MQTT 3.1.1)'} at {broker.url}"
                   " (private, loopback only)")
        central_store = CentralStore(work / "central.db")
        console_url = f"http://127.0.0.1:{console_port}" if console_port else None
        _demo_org(central_store, console_url)
        service = CentralService(central_store, BrokerSettings.from_url(broker.url))
        latencies: list[float] = []
        service.on_alert.append(lambda alert: _print_alert(alert, latencies))
        service.start()
        if not service.wait_ready(10):
            raise click.ClickException("central did not connect to the demo broker")
        click.echo(f"central  storing in {work / 'central.db'}")
        console = _start_console(work / "central.db", console_port) if console_port else None

        config = parse_config({
            "device": {"id": "kiosk-demo-1", "site": "store-042", "location": "exit-north"},
            "broker": {"url": broker.url},
            "survey": {"scale": "smiley4", "response_interval": 0},  # each simulated tap is a new visitor
            "sync": {"batch_delay": 0.5, "ack_timeout": 5},
        }, base=work)
        store = DeviceStore(config.storage.path)
        recorder = Recorder(store, config)
        agent = SyncAgent(config, DeviceStore(config.storage.path, synchronous="NORMAL"))
        recorder.on_record(agent.wake)
        agent_thread = threading.Thread(target=agent.run, args=(stop,), name="sync", daemon=True)
        agent_thread.start()
        click.echo(f"kiosk    {config.device_id} at {config.site}/{config.location}, {rate:g} taps/s "
                   f"({f'for {duration:g}s' if duration else 'Ctrl-C to stop'})\n")

        rng = random.Random(seed)
        values, probs = list(MIX["smiley4"]), list(MIX["smiley4"].values())
        taps = 0
        started = time.monotonic()
        try:
            while not stop.is_set():
                if duration is not None and time.monotonic() - started >= duration:
                    break
                value = rng.choices(values, probs)[0]
                reason = rng.choice(config.survey.reasons_negative) if value <= 2 and rng.random() < 0.6 else None
                rating = recorder.record(value, reason=reason)
                taps += 1
                click.echo(f"  tap #{rating.seq:<4} {FACES[value]}  {value}"
                           f"{'  (' + reason + ')' if reason else ''}"
                           f"{'  [repeat press: no alert]' if rating.flags else ''}")
                stop.wait(rng.expovariate(rate))
        except KeyboardInterrupt:
            click.echo("\nstopping…")
        # let the last taps arrive before stopping, but never wait long
        deadline = time.monotonic() + 5
        while store.backlog().undelivered and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        agent_thread.join(10)
        service.stop()
        if console is not None:
            console.should_exit = True
        stored = central_store.count("ratings")
        alerts = central_store.count("alerts")
        per_visitor = central_store.query("SELECT count(*) AS n FROM alerts WHERE kind = 'negative_rating'")[0]["n"]
        click.echo(f"\n{taps} taps recorded, {stored} stored centrally, {alerts} alerts "
                   f"({per_visitor} for unhappy visitors, {alerts - per_visitor} for patterns)")
        if latencies:
            click.echo(f"tap → alert: median {statistics.median(latencies) * 1000:.0f} ms, "
                       f"max {max(latencies) * 1000:.0f} ms")
        click.echo(f"databases kept in {work}")


def _print_alert(alert: dict[str, Any], latencies: list[float]) -> None:
    """A new negative-rating alert with its tap → alert time; pattern and kudos alerts as they are."""
    event = alert.get("event", "opened")
    if alert.get("kind") != "negative_rating":
        if event == "opened":
            click.secho(f"  {alert.get('severity', 'info').upper():<6} {alert['title']}", fg="yellow", bold=True)
        return
    if event not in ("opened", "grouped"):
        return  # escalated, reopened, recovered: not a new tap
    detail = alert.get("detail") or {}
    tapped = parse_utc(detail["rating_ts"]) if detail.get("rating_ts") else None
    if tapped is None:
        return
    latency = (datetime.now(UTC) - tapped).total_seconds()
    latencies.append(latency)
    what = f"rated {detail.get('value')}{', ' + detail['reason'] if detail.get('reason') else ''}"
    if event == "grouped":
        # within the cooldown: stored and on the alerts topic, but the manager is not paged again
        click.secho(f"  alert  {what} — grouped under the open alert (no new page), {latency * 1000:.0f} ms after"
                    " the tap", fg="red")
    else:
        click.secho(f"  ALERT  {alert['title']}: {what} — {latency * 1000:.0f} ms after the tap", fg="red", bold=True)


def _demo_org(store: CentralStore, console_url: str | None) -> None:
    """The demo's one site, and where its console is (so alerts link to their page)."""
    from central.org_admin import OrgAdmin

    doc: dict[str, Any] = {"name": "smileloop demo", "sites": {"store-042": {
        "name": "Store 042", "timezone": "Europe/Stockholm",
        "locations": {"exit-north": {"name": "Exit north", "devices": ["kiosk-demo-1"]}}}}}
    if console_url:
        doc["console_url"] = console_url
    OrgAdmin(store, "demo").replace(doc)


def _start_console(db: Path, port: int) -> Any:
    """The console on 127.0.0.1:``port`` in a thread, with a demo admin whose password is made up now."""
    import uvicorn

    from central.accounts import Accounts
    from central.console import create_app

    store = CentralStore(db)
    password = secrets.token_urlsafe(9)
    Accounts(store).add_user("demo", "admin", password)
    server = uvicorn.Server(uvicorn.Config(create_app(store, secure_cookies=False), host="127.0.0.1", port=port,
                                           log_level="warning", timeout_graceful_shutdown=1))
    threading.Thread(target=server.run, name="console", daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise click.ClickException(f"the console could not listen on 127.0.0.1:{port} (try --console-port)")
    click.secho(f"console  http://127.0.0.1:{port}/  log in as demo / {password}", fg="green", bold=True)
    return server
