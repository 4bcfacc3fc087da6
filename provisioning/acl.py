"""The broker's password file and ACL, rendered from the inventory.

Rules are keyed on the **username** (explicit ``user`` blocks), never on the client id a client picks itself.
A device's block names its own site, id and location, so it can speak only for itself.

The claim topics are the one place the client id matters: every new kiosk shares the ``claim`` account, so its
request and reply topics carry both the username and the client id (``pattern`` lines with ``%u/%c``). A kiosk
may write only ``…/_claim/claim/<its client id>/request`` and read only ``…/reply`` beside it: a subscription
to ``_claim/#`` delivers nothing of another kiosk's (its client id is 128 random bits, never on a topic it can
read). Other users' ``%u`` differs, so the pattern gives them nothing the responder listens to.

Every username and id is checked again here (``smileloop_core.ids``): a newline could otherwise add a line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from provisioning.errors import InvalidInput
from provisioning.inventory import Device
from smileloop_core import topics
from smileloop_core.ids import id_problem

CLAIM_PREFIX = f"{topics.PREFIX}/_claim"  # '_' cannot start a site id, so this never meets a real site

CENTRAL, PROVISIONER, CLAIM = "central", "provisioner", "claim"

ROLE_RULES: dict[str, list[tuple[str, str]]] = {
    # Central reads every device's ratings (also through a shared subscription) and status,
    # and writes receipts, config pushes, alerts and "you said, we did".
    CENTRAL: [("read", topics.ALL_RATINGS), ("read", topics.ALL_STATUS),
              ("read", f"$share/+/{topics.ALL_RATINGS}"),
              ("write", f"{topics.PREFIX}/+/+/ack"), ("write", f"{topics.PREFIX}/+/+/config"),
              ("write", f"{topics.PREFIX}/+/alerts"), ("write", f"{topics.PREFIX}/+/outcomes/+"),
              ("write", f"{topics.PREFIX}/+/+/erase")],
    # The claim responder staff run: answers claim requests, reads statuses for "last seen".
    PROVISIONER: [("read", f"{CLAIM_PREFIX}/{CLAIM}/+/request"), ("write", f"{CLAIM_PREFIX}/{CLAIM}/+/reply"),
                  ("read", topics.ALL_STATUS)],
    # Shared by every kiosk that has not enrolled yet: only the patterns below, for its own client id.
    CLAIM: [],
}
# For every user, but only the claim account's %u is the level the responder reads and writes.
PATTERNS = [("write", f"{CLAIM_PREFIX}/%u/%c/request"), ("read", f"{CLAIM_PREFIX}/%u/%c/reply")]


def claim_request_topic(requester: str) -> str:
    """Where the kiosk with client id ``requester`` (32 hex digits) asks, as the ``claim`` account."""
    return f"{CLAIM_PREFIX}/{CLAIM}/{requester}/request"


def claim_reply_topic(requester: str) -> str:
    return f"{CLAIM_PREFIX}/{CLAIM}/{requester}/reply"


def _checked(name: str, what: str) -> str:
    problem = id_problem(name, what)
    if problem is not None:
        raise InvalidInput(f"not written to the broker's files: {problem}")
    return name


def device_rules(device: Device) -> list[tuple[str, str]]:
    """What one device may do: publish its ratings and status (its will too), read its receipts, config,
    erase requests and its location's outcomes."""
    site, dev = device.site, device.device_id
    return [("write", topics.ratings(site, dev)), ("write", topics.status(site, dev)),
            ("read", topics.ack(site, dev)), ("read", topics.config(site, dev)),
            ("read", topics.erase(site, dev)), ("read", topics.outcomes(site, device.location))]


def render_acl(accounts: Mapping[str, str], devices: Iterable[Device]) -> str:
    """The ACL file: ``accounts`` maps username → role; devices that are not active get no block at all."""
    lines = ["# smileloop broker ACL, written by 'smileloop provision'. Do not edit: it is re-written on",
             "# every device change. Keyed on the username, which a client cannot choose.", ""]
    lines += [f"pattern {access} {topic}" for access, topic in PATTERNS] + [""]
    for username, role in sorted(accounts.items()):
        lines.append(f"user {_checked(username, 'account')}")
        lines += [f"topic {access} {topic}" for access, topic in ROLE_RULES[role]]
        lines.append("")
    for device in devices:
        if device.state != "active":
            continue
        _checked(device.site, "site")
        _checked(device.location, "location")
        lines.append(f"user {_checked(device.device_id, 'device id')}")
        lines += [f"topic {access} {topic}" for access, topic in device_rules(device)]
        lines.append("")
    return "\n".join(lines)


def render_passwd(hashes: Mapping[str, str]) -> str:
    """``username:$7$…`` lines, as ``mosquitto_passwd`` writes them."""
    for user, hashed in hashes.items():
        _checked(user, "username")
        if any(c in hashed for c in "\r\n:"):
            raise InvalidInput(f"not written to the broker's files: the password hash of {user!r} is malformed")
    return "".join(f"{user}:{hashed}\n" for user, hashed in sorted(hashes.items()))
