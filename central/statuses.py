"""Device statuses at central: the latest of each device kept, and each device's clock offset remembered.

Statuses are retained and repeated by every device's heartbeat, so they are kept in one statement per network
step and acknowledged whatever happens. Every worker reads every status (brokers do not send retained messages
to shared subscriptions), so each worker's memory of the clock offsets is complete once it has run a while;
until then the store's copy serves.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from central.errors import CentralError
from central.org_admin import OrgAdmin
from central.store import CentralStore, Rejection
from smileloop_core import topics
from smileloop_core.clock import Clock
from smileloop_core.ids import id_problem

MAX_STATUS_BYTES = 16_384
log = logging.getLogger("smileloop.central")


class StatusKeeper:
    def __init__(self, store: CentralStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._offsets: dict[tuple[str, str], tuple[str | None, float | None]] = {}  # (boot, clock offset)
        self._heard: set[tuple[str, str]] = set()  # devices whose lifecycle was checked since start

    def handle(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Many statuses: the latest of each device kept in one statement, unreadable ones rejected with a
        reason; each device's clock offset remembered for repairing its ratings' times."""
        now = self.clock.now()
        latest: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        rejections: list[Rejection] = []
        for topic, payload in messages:
            parsed = topics.parse_device_topic(topic)
            if parsed is None or not payload:
                continue  # an empty retained message clears the topic: nothing to keep
            site, device, _ = parsed
            status, why = _read_status(site, device, payload)
            if status is None:
                rejections.append(Rejection(topic, payload, why or "status rejected"))
                continue
            latest[(site, device)] = (status, payload.decode("utf-8", "replace"))
            offset = status.get("clock_offset")
            boot = status.get("boot")
            self._offsets[(site, device)] = (
                boot if isinstance(boot, str) else None,
                float(offset) if isinstance(offset, int | float) and not isinstance(offset, bool)
                and abs(offset) < 1e9 else None)
        with self.store.transaction():
            if rejections:
                self.store.reject_many(rejections, now)
            self.store.upsert_statuses([(s, d, status, raw) for (s, d), (status, raw) in latest.items()], now)
        self._first_heard([key for key, (status, _) in latest.items() if status.get("state") == "online"])

    def _first_heard(self, online: list[tuple[str, str]]) -> None:
        """A provisioned device that comes online for the first time becomes ``active`` in the organisation
        (audited as central's doing): staff see which installed devices really work."""
        new = [key for key in online if key not in self._heard]
        if not new:
            return
        self._heard.update(new)
        lifecycle = self.store.document("org")[0].get("lifecycle", {})
        for site, device in new:
            if lifecycle.get(f"{site}/{device}") == "provisioned":
                try:
                    OrgAdmin(self.store, "central", clock=self.clock).set_device_state(site, device, "active")
                except CentralError:
                    log.exception("could not mark %s/%s active", site, device)

    def clock_offset(self, site: str, device: str, boot: str | None) -> float | None:
        """The device's clock offset measured in this boot, from the statuses this worker has seen (every
        worker sees every status); the store's copy until then."""
        cached = self._offsets.get((site, device))
        if cached is None:
            return self.store.clock_offset(site, device, boot)
        return cached[1] if boot is not None and cached[0] == boot else None


def _read_status(site: str, device: str, payload: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """A status payload as a dict, or None and why (never raises: a hostile payload is its own fault)."""
    problem = id_problem(site, "the topic's site") or id_problem(device, "the topic's device")
    if problem:
        return None, problem
    if len(payload) > MAX_STATUS_BYTES:
        return None, f"status is {len(payload)} bytes; at most {MAX_STATUS_BYTES}"
    try:
        status = json.loads(payload)
    except Exception as e:
        return None, f"status is not a JSON object: {type(e).__name__}: {str(e)[:200]}"
    if not isinstance(status, dict):
        return None, "status is not a JSON object"
    return status, None
