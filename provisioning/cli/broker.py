"""``provision broker-config``, ``provision account`` and ``provision serve-claims``: the broker's side."""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path

import click

from provisioning.broker import apply_to_broker, default_run_as, rotate_account, write_broker_config
from provisioning.claims import ClaimResponder
from provisioning.cli.common import (
    _staff_settings,
    central_org,
    emit,
    json_option,
    pass_inventory,
    pass_inventory_creating,
    provision,
)
from provisioning.inventory import Inventory
from provisioning.nats import parse_node, write_nats_setup


@provision.command("broker-config")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for mosquitto.conf, passwd, acl, CA and certificates (or the NATS nodes' configs).")
@click.option("--engine", type=click.Choice(["mosquitto", "nats"]), default="mosquitto", show_default=True,
              help="One Mosquitto, or a NATS cluster serving MQTT 3.1.1 (docs/SCALE.md).")
@click.option("--node", "nodes", multiple=True, metavar="NAME:CLIENT:CLUSTER:MQTT",
              help="NATS only: a node and its three ports (repeat for each node; 3 for a cluster).")
@click.option("--port", type=int, help="Mosquitto: plain MQTT listener (keep it on loopback in production).")
@click.option("--tls-port", type=int, help="TLS listener for devices (CA, server and client certificates).")
@click.option("--bind", default="127.0.0.1", show_default=True,
              help="Address devices connect to (the TLS listener; the plain one too if there is no TLS).")
@click.option("--plain-bind", help="Address of the plain listener (default: 127.0.0.1 when there is a TLS port).")
@click.option("--host", "hosts", multiple=True, help="Name devices use for the broker (repeatable; goes in the "
              "server certificate). Default: localhost and 127.0.0.1.")
@click.option("--public-url", help="Broker URL written into device bundles (default from --host and the ports).")
@click.option("--run-as", help="User the broker runs as (as root, default 'mosquitto'); it must read the files.")
@click.option("--client-certs/--no-client-certs", default=True, show_default=True,
              help="Require a client certificate on the TLS listener as well as the password.")
@json_option
@pass_inventory_creating
def broker_config(inventory: Inventory, out: Path, engine: str, nodes: tuple[str, ...], port: int | None,
                  tls_port: int | None, bind: str, plain_bind: str | None, hosts: tuple[str, ...],
                  public_url: str | None, run_as: str | None, client_certs: bool, as_json: bool) -> None:
    """Write DIR/mosquitto.conf and the files it names; `mosquitto -c DIR/mosquitto.conf` runs it as is.

    Re-running keeps the CA and account passwords, so devices already installed stay valid. With
    `--engine nats`, DIR/<node>.conf for each `--node` (`nats-server -c DIR/n1.conf`): a cluster with
    JetStream and an MQTT listener per node, the same per-device rights as the Mosquitto ACL.

    \b
    Example:
        smileloop provision broker-config --out /etc/smileloop/broker --port 1883 --tls-port 8883 \\
            --bind 0.0.0.0 --host broker.example.com
        smileloop provision broker-config --engine nats --out /etc/smileloop/nats \\
            --node n1:4222:6222:1883 --node n2:4223:6223:1884 --node n3:4224:6224:1885
    """
    if engine == "nats":
        _nats_config(inventory, out, nodes, bind, as_json)
        return
    if port is None or nodes:
        raise click.UsageError("Mosquitto needs --port (and takes no --node)")
    setup = write_broker_config(inventory, out, port, bind=bind, plain_bind=plain_bind, tls_port=tls_port,
                                hosts=hosts or ("localhost", "127.0.0.1"), public_url=public_url,
                                run_as=run_as if run_as is not None else default_run_as(),
                                require_client_cert=client_certs)
    plain = plain_bind or ("127.0.0.1" if tls_port else bind)
    inventory.set_settings(local_url=f"mqtt://{'127.0.0.1' if plain in ('0.0.0.0', '::') else plain}:{port}")
    pid = apply_to_broker(inventory)
    d = setup.directory
    data = {"dir": str(d.root), "conf": str(d.conf), "device_url": setup.device_url,
            "central_password_file": str(d.account_password("central")), "enrol_profile": str(d.enrol),
            "reloaded_pid": pid}
    emit(as_json, data, f"wrote {d.conf}\n  run:        mosquitto -c {d.conf}\n"
                        f"  devices use {setup.device_url}\n"
                        f"  central:    --username central --password-file {d.account_password('central')}"
                        f"{' --ca-file ' + str(d.ca_cert) if tls_port else ''}\n"
                        f"  kiosk image: copy {d.enrol.parent}/ for 'smileloop enroll'")


def _nats_config(inventory: Inventory, out: Path, nodes: tuple[str, ...], bind: str, as_json: bool) -> None:
    if not nodes:
        raise click.UsageError("--engine nats needs a --node NAME:CLIENT:CLUSTER:MQTT for each node")
    confs, skipped = write_nats_setup(inventory, out.resolve(), [parse_node(n, bind) for n in nodes])
    data = {"engine": "nats", "confs": [str(c) for c in confs], "left_out": skipped,
            "central_password_file": str(out.resolve() / "accounts" / "central.password")}
    note = (f"\n  left out (no bcrypt hash, or no NATS rule): {', '.join(skipped)}" if skipped else "")
    emit(as_json, data, "wrote " + ", ".join(str(c) for c in confs)
         + f"\n  run:  nats-server -c {confs[0]}  (each node)"
         + f"\n  MQTT 3.1.1 only: broker URLs need ?protocol=3.1.1{note}")


@provision.group()
def account() -> None:
    """The broker accounts that are not devices: central, provisioner, claim.

    \b
    Example:
        smileloop provision account rotate central
    """


@account.command("rotate")
@click.argument("username", type=click.Choice(["central", "provisioner", "claim"]))
@json_option
@pass_inventory
def account_rotate(inventory: Inventory, username: str, as_json: bool) -> None:
    """New password for a broker account; restart whatever uses it (central reads its password file at start).

    \b
    Example:
        smileloop provision account rotate central
    """
    path = rotate_account(inventory, username)
    org = central_org()
    if org is not None:
        org.note("account.credentials", username)
    emit(as_json, {"account": username, "password_file": str(path)},
         f"account {username}: new password in {path} (0600); the old one stops working now")



@provision.command("serve-claims")
@click.option("--broker", "broker_url", help="Broker URL (default: this setup's local listener).")
@click.option("--duration", type=click.FloatRange(min=0.1), help="Stop after this many seconds.")
@pass_inventory
def serve_claims(inventory: Inventory, broker_url: str | None, duration: float | None) -> None:
    """Answer claim codes: each new kiosk gets its own fresh credentials, once.

    Run it on the broker's host (it re-writes the password file and reloads the broker).

    \b
    Example:
        smileloop provision serve-claims
    """
    settings = _staff_settings(inventory, broker_url)
    responder = ClaimResponder(inventory, settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(f"answering claim codes on {settings.redacted()}; Ctrl-C stops", err=True)
    if duration is not None:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True
        timer.start()
    with contextlib.suppress(KeyboardInterrupt):
        responder.run(stop)
    click.echo(f"answered {responder.answered}, refused {responder.refused}", err=True)

