"""The broker's password file and ACL, rendered from the inventory.

Rules are keyed on the **username** (explicit ``user`` blocks), never on the client id a client picks itself.
A device's block names its own site, id and location, so it can speak only for itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from provisioning.inventory import Device
from smileloop_core import topics

CLAIM_PREFIX = f"{topics.PREFIX}/_claim"  # '_' cannot start a site id, so this never meets a real site

CENTRAL, PROVISIONER, CLAIM = "central", "provisioner", "claim"

ROLE_RULES: dict[str, list[tuple[str, str]]] = {
    # Central reads every device's ratings (also through a shared subscription) and status,
    # and writes receipts, config pushes, alerts and "you said, we did".
    CENTRAL: [("read", topics.ALL_RATINGS), ("read", topics.ALL_STATUS),
              ("read", f"$share/+/{topics.ALL_RATINGS}"),
              ("write", f"{topics.PREFIX}/+/+/ack"), ("write", f"{topics.PREFIX}/+/+/config"),
              ("write", f"{topics.PREFIX}/+/alerts"), ("write", f"{topics.PREFIX}/+/outcomes/+")],
    # The claim responder staff run: answers claim requests, reads statuses for "last seen".
    PROVISIONER: [("read", f"{CLAIM_PREFIX}/+/request"), ("write", f"{CLAIM_PREFIX}/+/reply"),
                  ("read", topics.ALL_STATUS)],
    # Shared by every kiosk that has not enrolled yet: it may ask, and read (encrypted) answers. Nothing else.
    CLAIM: [("write", f"{CLAIM_PREFIX}/+/request"), ("read", f"{CLAIM_PREFIX}/+/reply")],
}


def claim_request_topic(code_id: str) -> str:
    return f"{CLAIM_PREFIX}/{code_id}/request"


def claim_reply_topic(code_id: str) -> str:
    return f"{CLAIM_PREFIX}/{code_id}/reply"


def device_rules(device: Device) -> list[tuple[str, str]]:
    """What one device may do: publish its ratings and status (its will too), read its receipts, config and
    its location's outcomes."""
    site, dev = device.site, device.device_id
    return [("write", topics.ratings(site, dev)), ("write", topics.status(site, dev)),
            ("read", topics.ack(site, dev)), ("read", topics.config(site, dev)),
            ("read", topics.outcomes(site, device.location))]


def render_acl(accounts: Mapping[str, str], devices: Iterable[Device]) -> str:
    """The ACL file: ``accounts`` maps username → role; devices that are not active get no block at all."""
    lines = ["# smileloop broker ACL, written by 'smileloop provision'. Do not edit: it is re-written on",
             "# every device change. Keyed on the username, which a client cannot choose.", ""]
    for username, role in sorted(accounts.items()):
        lines.append(f"user {username}")
        lines += [f"topic {access} {topic}" for access, topic in ROLE_RULES[role]]
        lines.append("")
    for device in devices:
        if device.state != "active":
            continue
        lines.append(f"user {device.device_id}")
        lines += [f"topic {access} {topic}" for access, topic in device_rules(device)]
        lines.append("")
    return "\n".join(lines)


def render_passwd(hashes: Mapping[str, str]) -> str:
    """``username:$7$…`` lines, as ``mosquitto_passwd`` writes them."""
    return "".join(f"{user}:{hashed}\n" for user, hashed in sorted(hashes.items()))
