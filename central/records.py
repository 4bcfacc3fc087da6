"""The typed values central's layers pass each other: what a rule proposes (:class:`Candidate`), an alert as
stored (:class:`Alert`), what opening one did (:class:`Opened`), deliveries and their attempts, device status
and the rating counts the rules read. The store returns these; nothing above it reads a table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict


@dataclass(frozen=True)
class Candidate:
    """An alert a rule proposes; :meth:`central.store.CentralStore.open_alert` opens it idempotently.

    ``group_key`` names the cause: one live alert per ``(kind, group_key)``. ``cooldown`` (seconds), when a rule
    sets it, overrides the cooldown the caller passes to ``open_alert``.
    """

    kind: str
    site: str
    location: str | None
    title: str
    detail: dict[str, Any] = field(default_factory=dict)
    group_key: str | None = None
    device_id: str | None = None
    rating_id: str | None = None
    severity: str = "alert"
    cooldown: float | None = None

    @property
    def key(self) -> str:
        """The cause this alert stands for: its group key, else its rating, else its site and kind."""
        return self.group_key or self.rating_id or f"{self.site}/{self.kind}"


class Alert(TypedDict):
    """One row of ``alerts``, ``detail`` decoded.

    A TypedDict and not a dataclass: the CLI prints alerts as JSON, the MQTT alerts topic carries them whole,
    and readers (``alert["id"]``, ``alert.get("location")``) treat them as the mappings they are on the wire.
    """

    id: str
    kind: str
    site: str
    location: str | None
    device_id: str | None
    rating_id: str | None
    state: str  # open | acknowledged | resolved
    opened_at: str
    title: str
    detail: dict[str, Any]
    notified_at: str | None
    group_key: str | None
    severity: str  # alert | health | kudos
    parent_id: str | None
    hits: int
    last_seen_at: str | None
    level: int
    escalated_at: str | None
    acked_by: str | None
    acked_at: str | None
    resolved_by: str | None
    resolved_at: str | None
    root_cause: str | None
    action: str | None
    reopened: int
    assignee: str | None  # who should act (the console's "assign"); acked_by is who took it


@dataclass(frozen=True)
class Opened:
    """What opening an alert did: ``opened``, ``grouped`` (under a recent one), ``reopened``, ``repeated`` (an
    open one saw the same condition again) or ``duplicate`` (this exact alert exists: a redelivery)."""

    action: str
    alert: Alert

    @property
    def notify(self) -> bool:
        return self.action in ("opened", "reopened")


class AuditEntry(TypedDict):
    """One change of an alert, as ``smileloop alerts show`` lists it."""

    at: str
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    note: dict[str, Any] | None


@dataclass(frozen=True)
class AlertMessage:
    """An alert's message for the site's alerts topic, recorded as a delivery before it is published
    (``row_id`` None: a grouped alert's, published but not recorded)."""

    row_id: str | None
    topic: str
    payload: str


@dataclass(frozen=True)
class Delivery:
    """A delivery to a person waiting to be sent (or collapsed into a digest)."""

    id: str
    alert_id: str
    purpose: str  # alert | reopened-N | escalation-N | followup | digest
    contact: str
    url: str
    attempts: int
    payload: dict[str, Any]  # followup: {"body"}; digest: {"title", "body", "alerts"}; else {}


class Attempt(TypedDict):
    at: str
    ok: int  # 1 or 0, as stored
    error: str | None


class DeliveryRecord(TypedDict):
    """A delivery of an alert with its attempts (``smileloop alerts show``); ``url`` as stored."""

    purpose: str
    contact: str
    url: str
    state: str
    attempts: int
    next_at: str
    sent_at: str | None
    tries: list[Attempt]


class DeviceStatus(TypedDict):
    """The latest status a device published (retained), as stored."""

    site: str
    device_id: str
    location: str | None
    state: str
    ts: str | None
    received_at: str
    since: str
    backlog: int | None
    oldest_unsent: str | None
    disk_free_mb: float | None
    raw: str


@dataclass(frozen=True)
class RatingGroup:
    """``n`` ratings of a window with the same scale, value, sentiment and reason."""

    scale: str
    value: int
    sentiment: str
    reason: str | None
    n: int


@dataclass(frozen=True)
class ReasonCount:
    """``n`` negative ratings giving ``reason`` at ``location``."""

    reason: str
    location: str
    n: int


@dataclass(frozen=True)
class Tap:
    """A rating's value and time, for the misuse rules."""

    value: int
    ts: datetime
