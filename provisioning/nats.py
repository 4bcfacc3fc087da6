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
MQTT has none: central workers use a JetStream consumer instead, later), and ids with a ``.`` (a subject token
separator in NATS), which are refused here rather than silently widening a right.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from provisioning.acl import CLAIM, ROLE_RULES, device_rules
from provisioning.broker import ACCOUNTS
from provisioning.credentials import new_password, write_secret
from provisioning.errors import InvalidInput
from provisioning.inventory import Device, Inventory
from smileloop_core.ids import id_problem

ACCOUNT = "SMILELOOP"  # every user of the fleet in one account: one subject namespace, JetStream on
MQTT_DELIVERY = "$MQTT.sub.>"  # where NATS delivers an MQTT client's QoS 1 subscriptions


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
    entries: list[tuple[str, dict[str, dict[str, list[str]]]]] = []
    for username, role in sorted(accounts.items()):
        if role == CLAIM:
            skipped.append(username)  # no per-client-id rule in NATS config files (module docstring)
            continue
        entries.append((_checked(username, "account"), _permissions(ROLE_RULES[role])))
    entries += [(_checked(d.device_id, "device id"), device_permissions(d)) for d in devices if d.state == "active"]
    for username, permissions in entries:
        hashed = passwords.get(username)
        if not hashed or not hashed.startswith("$2"):
            skipped.append(username)
            continue
        out.append({"user": username, "password": hashed, "permissions": permissions,
                    "allowed_connection_types": ["MQTT"]})
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
        f"mqtt {{ listen: {q(f'{node.host}:{node.mqtt_port}')} }}",
        f"accounts {{ {ACCOUNT}: {{ jetstream: enabled, users: {json.dumps(account_users, indent=2)} }} }}",
    ]
    return "\n".join(lines) + "\n"


def bcrypt_hash(password: str) -> str:
    """A ``$2b$`` bcrypt hash (what NATS checks passwords against) from the C library's crypt(3)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # libxcrypt does bcrypt; the module leaves Python in 3.13 (use the bcrypt package then)

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


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
    kept on re-runs), devices their inventory rights; what has no bcrypt hash is left out and named."""
    passwords: dict[str, str] = {}
    for username in ACCOUNTS:
        pw_file = out / "accounts" / f"{username}.password"
        if not pw_file.exists():
            write_secret(pw_file, new_password() + "\n")
        passwords[username] = bcrypt_hash(pw_file.read_text().strip())
    passwords |= {user: hashed for user, hashed in inventory.device_hashes().items() if hashed.startswith("$2")}
    return write_nats_config(out, nodes, accounts=ACCOUNTS, devices=inventory.devices(include_revoked=False),
                             passwords=passwords)


def parse_node(spec: str, host: str = "127.0.0.1") -> NatsNode:
    """``NAME:CLIENT:CLUSTER:MQTT`` (ports) → :class:`NatsNode`."""
    parts = spec.split(":")
    try:
        if len(parts) != 4:
            raise ValueError
        return NatsNode(parts[0], int(parts[1]), int(parts[2]), int(parts[3]), host=host)
    except ValueError:
        raise InvalidInput(f"--node {spec!r}: give NAME:CLIENT_PORT:CLUSTER_PORT:MQTT_PORT") from None

