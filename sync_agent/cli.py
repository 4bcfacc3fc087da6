"""``smileloop sync``: run the sync agent for one device."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from dataclasses import asdict
from pathlib import Path

import click

from device import DeviceStore, config_option, load_config
from sync_agent.agent import SyncAgent


@click.command()
@config_option
@click.option("--once", is_flag=True, help="Deliver the whole backlog, then exit 0 once central has receipted it.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="With --once: give up (exit 1) after this many seconds.")
@click.option("--status", "show_status", is_flag=True,
              help="Print the backlog and the agent's last status report as JSON, then exit.")
def sync(config_path: Path, once: bool, timeout: float, show_status: bool) -> None:
    """Deliver this device's ratings to central over MQTT.

    Without --once it runs until stopped (SIGTERM or Ctrl-C), reconnecting on its own.

    \b
    Examples:
        smileloop sync --config device.toml
        smileloop sync --config device.toml --once --timeout 30
        smileloop sync --config device.toml --status
    """
    config = load_config(config_path)
    if show_status:
        store = DeviceStore(config.storage.path, synchronous="NORMAL")
        backlog = store.backlog()
        click.echo(json.dumps({"config_version": config.version, "backlog": {**asdict(backlog),
                               "undelivered": backlog.undelivered}, "space": asdict(store.space()),
                               "agent": store.agent_status()}, indent=2))
        return
    agent = SyncAgent(config)
    if once:
        status = agent.drain(timeout)
        click.echo(f"delivered: {status.delivered} receipted, {status.rejected} rejected by central; backlog 0")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        agent.run(stop)
