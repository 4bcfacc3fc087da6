"""One organisation, one fleet: every device's state as central last heard it, and config pushes to the devices
of a site or location (docs/FLEET.md).

The state comes from central's ``device_status`` table (the retained status each device publishes, kept raw)
and the org tree, so a device described there but never heard from shows as ``never seen``. A push is checked
with the rules the device applies (:func:`device.check_push`) before anything is sent, versioned one higher than
any version the devices have had, kept in ``config_pushes``, and published retained on each device's config
topic (docs/PROTOCOL.md, "Config push"); :func:`await_answers` reads the devices' answers back from the store.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from central.errors import FleetError, PublishFailed
from central.org import Org
from central.records import DeviceStatus
from central.rulebook import RuleBook
from central.store import CentralStore, parse_time
from central.store_fleet import PushLog
from device import check_push
from smileloop_core import topics
from smileloop_core.mqtt import BrokerSettings, connect_kwargs, is_failure, make_client, reason_text

STATES = ("online", "offline", "silent", "never seen")


@dataclass(frozen=True)
class DeviceRow:
    """One line of ``smileloop fleet status``."""

    site: str
    device: str
    location: str | None
    state: str  # one of STATES; "silent": says online, but no status for longer than device_offline.stale
    last_seen: str | None  # when central last received its status
    since: str | None  # when its state last changed
    backlog: int | None
    oldest_unsent: str | None
    disk_free_mb: float | None
    software: str | None
    config_version: int | None
    config: dict[str, Any] | None  # the last push: version, state, reason
    clock_offset: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fleet_status(store: CentralStore, org: Org, now: datetime, *, site: str | None = None,
                 location: str | None = None, state: str | None = None) -> list[DeviceRow]:
    """Every device with a status or a place in the org tree, by site and device, filtered as asked; a device
    retired in the organisation is left out (and so is never a push target)."""
    book = RuleBook(store.document("rules")[0])
    rows: dict[tuple[str, str], DeviceRow] = {}
    for s in store.statuses(site):
        loc = s["location"] or org.location_of(s["site"], s["device_id"])
        stale = float(book.params("device_offline", s["site"], loc)["stale"])
        rows[(s["site"], s["device_id"])] = _row(s, loc, stale, now)
    for sid, described in org.sites.items():
        if site and sid != site:
            continue
        for loc_id, loc_def in described.locations.items():
            for dev in loc_def.devices:
                rows.setdefault((sid, dev), DeviceRow(sid, dev, loc_id, "never seen", *([None] * 9)))
    return [r for key, r in sorted(rows.items()) if org.state_of(*key) != "retired"
            and (location is None or r.location == location) and (state is None or r.state == state)]


def _row(s: DeviceStatus, location: str | None, stale: float, now: datetime) -> DeviceRow:
    raw = _raw(s)
    received = parse_time(s["received_at"])
    state = s["state"] if s["state"] in ("online", "offline") else "offline"
    if state == "online" and received is not None and (now - received).total_seconds() > stale:
        state = "silent"
    return DeviceRow(
        site=s["site"], device=s["device_id"], location=location, state=state, last_seen=s["received_at"],
        since=s["since"], backlog=s["backlog"], oldest_unsent=s["oldest_unsent"], disk_free_mb=s["disk_free_mb"],
        software=_typed(raw.get("version"), str), config_version=_typed(raw.get("config_version"), int),
        config=_typed(raw.get("config"), dict), clock_offset=_typed(raw.get("clock_offset"), float))


def _raw(s: DeviceStatus | None) -> dict[str, Any]:
    try:
        raw = json.loads(s["raw"]) if s else {}
    except ValueError:
        return {}
    return raw if isinstance(raw, dict) else {}


def _typed(value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        return None
    if kind is float and isinstance(value, int):
        return float(value)
    return value if isinstance(value, kind) else None


# --- pushing --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Push:
    """One config push, ready to send: the same version and tables to each device."""

    site: str
    devices: tuple[str, ...]
    version: int
    tables: dict[str, Any]

    def payload(self) -> bytes:
        return json.dumps({"v": 1, "version": self.version, "config": self.tables}, ensure_ascii=False).encode()

    def messages(self) -> dict[str, bytes]:
        """Topic → payload, one per device."""
        return {topics.config(self.site, d): self.payload() for d in self.devices}


def targets(store: CentralStore, org: Org, site: str, location: str | None = None,
            device: str | None = None) -> tuple[str, ...]:
    """The devices at ``site`` (and ``location``, or just ``device``) per the org tree and their statuses."""
    known = {r.device: r.location for r in fleet_status(store, org, datetime.now().astimezone(), site=site)}
    if device is not None:
        if device not in known:
            raise FleetError(f"no device {device!r} at site {site!r} (neither in the org tree nor heard from)")
        if location is not None and known[device] != location:
            raise FleetError(f"device {device!r} is at location {known[device]!r}, not {location!r}")
        return (device,)
    chosen = tuple(sorted(d for d, loc in known.items() if location is None or loc == location))
    if not chosen:
        where = f"{site}/{location}" if location else site
        raise FleetError(f"no devices at {where} (neither in the org tree nor heard from)")
    return chosen


def plan_push(store: CentralStore, org: Org, tables: dict[str, Any], site: str, location: str | None = None,
              device: str | None = None) -> Push:
    """Check ``tables`` as the device will (:class:`device.ConfigError` naming ``section.key``), find the devices
    and the next version: one higher than any pushed to them or in force on them."""
    if not tables:
        raise FleetError("nothing to push: give at least one setting (see smileloop fleet push --help)")
    check_push(tables)
    devices = targets(store, org, site, location, device)
    in_force = [_raw(store.status(site, d)).get("config_version") for d in devices]
    reported = max((v for v in in_force if isinstance(v, int) and not isinstance(v, bool)), default=0)
    version = max(PushLog(store).highest_version(site, devices), reported) + 1
    return Push(site, devices, version, tables)


def publish(settings: BrokerSettings, messages: dict[str, bytes], *, client_id: str, timeout: float = 10.0) -> None:
    """Publish each message retained at QoS 1 and wait for every PUBACK; :class:`PublishFailed` otherwise."""
    client = make_client(settings, client_id)
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        if is_failure(reason):
            refused.append(f"connection refused: {reason_text(reason)}")
        connected.set()

    def on_publish(_c: Any, _u: Any, mid: int, reason: Any, _p: Any = None) -> None:
        if is_failure(reason):
            refused.append(f"publish refused: {reason_text(reason)}")

    client.on_connect, client.on_publish = on_connect, on_publish
    try:
        client.connect(**connect_kwargs(settings))
    except (OSError, ValueError) as e:
        raise PublishFailed(f"cannot reach the broker at {settings.redacted()}: {e}") from None
    client.loop_start()
    try:
        if not connected.wait(timeout) or refused:
            raise PublishFailed(f"broker {settings.redacted()}: {refused[0] if refused else 'no answer'}")
        sent = [client.publish(topic, payload, qos=1, retain=True) for topic, payload in messages.items()]
        deadline = time.monotonic() + timeout
        for info in sent:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            if not info.is_published():
                raise PublishFailed(f"broker {settings.redacted()} did not acknowledge a config push in {timeout}s")
        if refused:
            raise PublishFailed(f"broker {settings.redacted()}: {refused[0]}")
    finally:
        client.disconnect()
        client.loop_stop()


@dataclass(frozen=True)
class Answer:
    device: str
    outcome: str  # "applied", "rejected" or "no answer"
    reason: str | None = None


def answer_of(status: DeviceStatus | None, version: int) -> Answer | None:
    """What the device's latest status says about push ``version``, or None while it says nothing yet."""
    raw = _raw(status)
    last = raw.get("config")
    last = last if isinstance(last, dict) else {}
    device = status["device_id"] if status else ""
    if last.get("version") == version and last.get("state") == "rejected":
        return Answer(device, "rejected", str(last.get("reason")))
    in_force = raw.get("config_version")
    if isinstance(in_force, int) and not isinstance(in_force, bool) and in_force >= version:
        return Answer(device, "applied")
    return None


def await_answers(store: CentralStore, push: Push, seconds: float, *, interval: float = 0.5,
                  sleep: Callable[[float], None] = time.sleep,
                  monotonic: Callable[[], float] = time.monotonic) -> list[Answer]:
    """Poll the devices' statuses in central's store until each has applied or rejected the push, or
    ``seconds`` have passed (central must be running, storing statuses)."""
    answers: dict[str, Answer] = {}
    deadline = monotonic() + seconds
    while True:
        for d in push.devices:
            if d not in answers and (a := answer_of(store.status(push.site, d), push.version)) is not None:
                answers[d] = a
        if len(answers) == len(push.devices) or monotonic() >= deadline:
            break
        sleep(interval)
    return [answers.get(d) or Answer(d, "no answer") for d in push.devices]


def record(store: CentralStore, push: Push, at: datetime, by: str) -> None:
    """Keep the push in ``config_pushes`` (before it is sent: a version is never handed out twice)."""
    PushLog(store).record(push.site, push.devices, push.version, push.tables, at, by)


__all__: Sequence[str] = ["STATES", "Answer", "DeviceRow", "Push", "answer_of", "await_answers", "fleet_status",
                          "plan_push", "publish", "record", "targets"]
