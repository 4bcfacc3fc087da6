"""A NATS cluster as the broker: one config file per node, with the same accounts and per-device rights as the
Mosquitto ACL (provisioning/acl.py), for ``nats-server -c DIR/<node>.conf``.

NATS serves MQTT 3.1.1 (``mqtt {}`` listener, JetStream underneath; it refuses MQTT v5, so devices and central
use ``?protocol=3.1.1``). An MQTT topic is a NATS subject with ``/`` → ``.``, ``+`` → ``*`` and ``#`` → ``>``:
``smileloop/v1/s/d/ratings`` is ``smileloop.v1.s.d.ratings``, and permissions are written on subjects.
MQTT usernames and passwords authenticate against the users of the account (bcrypt hashes here); a QoS 1
subscription is a JetStream consumer delivering on ``$MQTT.sub.<id>``, so every user that subscribes must also
be allowed ``$MQTT.sub.>`` (NATS 2.9–2.11; 2.12.3 allows it implicitly).

What does not carry over (docs/SCALE.md): the ``claim`` account (Mosquitto's ``%c`` pattern keys a kiosk's claim
topics on its client id; NATS config files have no such variable), shared subscriptions (``$share/…``; NATS 2.9
MQTT has none: central workers share a JetStream consumer instead, central/nats_source.py, so the ``central`` user
may also connect as a NATS client, with :data:`CENTRAL_JETSTREAM` rights), and ids with a ``.`` (a subject token
separator in NATS), which are refused here rather than silently widening a right.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from central.nats_source import STREAM
from provisioning.acl import CENTRAL, CLAIM, ROLE_RULES, device_rules
from provisioning.broker import ACCOUNTS
from provisioning.bundle import nats_key
from provisioning.credentials import bcrypt_hash, new_password, write_secret
from provisioning.errors import InvalidInput
from provisioning.inventory import Device, Inventory
from smileloop_core.ids import id_problem

ACCOUNT = "SMILELOOP"  # every user of the fleet in one account: one subject namespace, JetStream on
MQTT_DELIVERY = "$MQTT.sub.>"  # where NATS delivers an MQTT client's QoS 1 subscriptions
# Central's workers also connect as NATS clients (central/nats_source.py): the ratings stream and its durable
# consumer — make or look up, fetch, acknowledge — and nothing else of JetStream (no other stream, no deletes).
CENTRAL_JETSTREAM = {
    "publish": ["$JS.API.INFO", f"$JS.API.STREAM.INFO.{STREAM}", f"$JS.API.STREAM.CREATE.{STREAM}",
                f"$JS.API.CONSUMER.CREATE.{STREAM}", f"$JS.API.CONSUMER.CREATE.{STREAM}.>",
                f"$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.>", f"$JS.API.CONSUMER.INFO.{STREAM}.>",
                f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.>", f"$JS.ACK.{STREAM}.>"],
    "subscribe": ["_INBOX.>"],
}


@dataclass(frozen=True)
class NatsNode:
    """One server of the cluster: its name and the three ports it listens on."""

    name: str
    client_port: int
    cluster_port: int
    mqtt_port: int
    host: str = "127.0.0.1"

    def route(self) -> str:
        return f"nats-route://{self.host}:{self.cluster_port}"


def subject(topic: str) -> str:
    """The NATS subject (or wildcard) for an MQTT topic (or filter).

    >>> subject("smileloop/v1/+/+/ratings")
    'smileloop.v1.*.*.ratings'
    """
    tokens = topic.split("/")
    for token in tokens:
        if "." in token or not token:
            raise InvalidInput(f"topic {topic!r}: level {token!r} cannot be a NATS subject token")
    return ".".join({"+": "*", "#": ">"}.get(t, t) for t in tokens)


def _permissions(rules: Iterable[tuple[str, str]]) -> dict[str, dict[str, list[str]]]:
    """Mosquitto ``(read|write, topic)`` rules → NATS publish/subscribe allow lists (deny everything else)."""
    publish: list[str] = []
    subscribe: list[str] = []
    for access, topic in rules:
        if topic.startswith("$share/"):
            continue  # no shared subscriptions over NATS MQTT (module docstring)
        (publish if access == "write" else subscribe).append(subject(topic))
    if subscribe:
        subscribe.append(MQTT_DELIVERY)
    return {"publish": {"allow": publish}, "subscribe": {"allow": subscribe}}


def _checked(value: str, what: str) -> str:
    problem = id_problem(value, what)
    if problem is None and "." in value:
        problem = f"{what} {value!r} contains '.', a subject separator in NATS"
    if problem is not None:
        raise InvalidInput(f"not written to the NATS config: {problem}")
    return value


def device_permissions(device: Device) -> dict[str, dict[str, list[str]]]:
    """Publish its own ratings and status; read its own ack, config, erase and its location's outcomes."""
    for value, what in ((device.site, "site"), (device.device_id, "device id"), (device.location, "location")):
        _checked(value, what)
    return _permissions(device_rules(device))


def users(accounts: Mapping[str, str], devices: Iterable[Device],
          passwords: Mapping[str, str]) -> tuple[list[dict[str, object]], list[str]]:
    """The account's users (MQTT connections only) and the usernames left out for want of a usable hash.

    ``accounts`` maps username → role (``central``, ``provisioner``); ``passwords`` username → bcrypt hash.
    """
    out: list[dict[str, object]] = []
    skipped: list[str] = []
    entries: list[tuple[str, dict[str, dict[str, list[str]]], list[str]]] = []
    for username, role in sorted(accounts.items()):
        if role == CLAIM:
            skipped.append(username)  # no per-client-id rule in NATS config files (module docstring)
            continue
        permissions = _permissions(ROLE_RULES[role])
        kinds = ["MQTT"]
        if role == CENTRAL:  # its workers pull ratings from JetStream as NATS clients too
            for way, subjects in CENTRAL_JETSTREAM.items():
                permissions[way]["allow"] += subjects
            kinds.append("STANDARD")
        entries.append((_checked(username, "account"), permissions, kinds))
    entries += [(_checked(d.device_id, "device id"), device_permissions(d), ["MQTT"])
                for d in devices if d.state == "active"]
    for username, permissions, kinds in entries:
        hashed = passwords.get(username)
        if not hashed or not hashed.startswith("$2"):
            skipped.append(username)
            continue
        out.append({"user": username, "password": hashed, "permissions": permissions,
                    "allowed_connection_types": kinds})
    return out, skipped


def render_node(node: NatsNode, nodes: Sequence[NatsNode], store_dir: Path,
                account_users: list[dict[str, object]], *, cluster_name: str = "smileloop") -> str:
    """One node's config: client, cluster and MQTT listeners, JetStream, and the fleet's account."""
    routes = [n.route() for n in nodes if n is not node]
    q = json.dumps
    lines = [
        "# smileloop NATS node, written by 'smileloop provision broker-config --engine nats'.",
        f"# run: nats-server -c {node.name}.conf   (re-written on every device change; then reload)",
        f"server_name: {q(node.name)}",
        f"listen: {q(f'{node.host}:{node.client_port}')}",
        f"jetstream {{ store_dir: {q(str(store_dir))} }}",
        f"cluster {{ name: {q(cluster_name)}, listen: {q(f'{node.host}:{node.cluster_port}')}, "
        f"routes: {q(routes)} }}",
        # NATS sizes the MQTT streams (sessions, retained, QoS 1) by the nodes it sees when the first MQTT client
        # comes; a cluster still forming would get 2 copies, and then one lost node stops MQTT for everyone.
        f"mqtt {{ listen: {q(f'{node.host}:{node.mqtt_port}')}, stream_replicas: {min(3, len(nodes))} }}",
        f"accounts {{ {ACCOUNT}: {{ jetstream: enabled, users: {json.dumps(account_users, indent=2)} }} }}",
    ]
    return "\n".join(lines) + "\n"


def write_nats_config(out: Path, nodes: Sequence[NatsNode], *, accounts: Mapping[str, str],
                      devices: Iterable[Device], passwords: Mapping[str, str]) -> tuple[list[Path], list[str]]:
    """``out/<node>.conf`` for each node (store in ``out/data/<node>``); the files and the users left out."""
    if not nodes:
        raise InvalidInput("a NATS cluster needs at least one node")
    names = [n.name for n in nodes]
    ports = [p for n in nodes for p in (n.client_port, n.cluster_port, n.mqtt_port)]
    if len(set(names)) != len(names) or len(set(ports)) != len(ports):
        raise InvalidInput("every node needs its own name and ports")
    for p in ports:
        if not 1 <= p <= 65535:
            raise InvalidInput(f"port {p} must be 1-65535")
    account_users, skipped = users(accounts, devices, passwords)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for node in nodes:
        _checked(node.name, "node name")
        path = out / f"{node.name}.conf"
        path.write_text(render_node(node, nodes, out / "data" / node.name, account_users))
        path.chmod(0o600)  # password hashes
        written.append(path)
    return written, skipped


def write_nats_setup(inventory: Inventory, out: Path, nodes: Sequence[NatsNode]) -> tuple[list[Path], list[str]]:
    """The cluster's configs from the inventory: the accounts get passwords of their own (``out/accounts/``, 0600,
    kept on re-runs), devices their inventory rights and the bcrypt hash kept when their credentials were issued;
    a device whose credentials predate that has none: it is left out and named (``device rotate`` gives it one)."""
    passwords: dict[str, str] = {}
    for username in ACCOUNTS:
        pw_file = out / "accounts" / f"{username}.password"
        if not pw_file.exists():
            write_secret(pw_file, new_password() + "\n")
        passwords[username] = bcrypt_hash(pw_file.read_text().strip())
    devices = inventory.devices(include_revoked=False)
    for device in devices:  # kept beside the Mosquitto hash since credentials are issued (provisioning/bundle.py)
        hashed = inventory.setting(nats_key(device.device_id))
        if hashed:
            passwords[device.device_id] = hashed
    return write_nats_config(out, nodes, accounts=ACCOUNTS, devices=devices, passwords=passwords)


def parse_node(spec: str, host: str = "127.0.0.1") -> NatsNode:
    """``NAME:CLIENT:CLUSTER:MQTT`` (ports) → :class:`NatsNode`."""
    parts = spec.split(":")
    try:
        if len(parts) != 4:
            raise ValueError
        return NatsNode(parts[0], int(parts[1]), int(parts[2]), int(parts[3]), host=host)
    except ValueError:
        raise InvalidInput(f"--node {spec!r}: give NAME:CLIENT_PORT:CLUSTER_PORT:MQTT_PORT") from None

