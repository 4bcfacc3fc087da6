"""Data subject requests (docs/PRIVACY.md): everything central holds about a visitor's address, and its erasure
— here, and on the devices that sent the ratings.

:func:`export` answers "what do you hold about me?"; :func:`erase` scrubs it from central's store in one
transaction and leaves one request per device that sent those ratings; :func:`erase_messages` is what
``smileloop privacy erase`` publishes, retained, on each device's erase topic (docs/PROTOCOL.md, "Erase
request"): every request that device has not yet reported done. The device answers on its status topic, which
central keeps; :func:`reconcile` reads the answers and marks the requests done. Each export and erasure is
audited in ``privacy_audit`` with a hash of the address, never the address.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from central.store import CentralStore
from central.store_privacy import PLACES, DeviceRequest, PrivacyStore, Subject
from smileloop_core import topics
from smileloop_core.clock import utc_iso

__all__ = ["PLACES", "DeviceRequest", "Erasure", "Subject", "await_devices", "erase", "erase_messages", "export",
           "reconcile"]


def export(store: CentralStore, subject: Subject, at: datetime, actor: str) -> dict[str, Any]:
    """Every row holding something of ``subject``, per place, as JSON-ready data; the export is audited."""
    privacy = PrivacyStore(store)
    held = privacy.holdings(subject)
    rows = {place: len(held.places[place]) for place in PLACES}
    privacy.audit(at, actor, "export", subject.key, {"rows": rows})
    return {"v": 1, "subject": subject.key, "exported_at": utc_iso(at), "total": held.total, "rows": rows,
            "places": {place: [_decoded(r) for r in held.places[place]] for place in PLACES}}


@dataclass(frozen=True)
class Erasure:
    """What one erasure did: rows scrubbed per place, and the requests left for devices."""

    subject: str
    rows: dict[str, int]
    requests: list[DeviceRequest]

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    def as_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "total": self.total, "rows": self.rows,
                "devices": [{"request": r.id, "site": r.site, "device": r.device_id, "ratings": list(r.rating_ids)}
                            for r in self.requests]}


def erase(store: CentralStore, subject: Subject, at: datetime, actor: str) -> Erasure:
    """Scrub ``subject`` from every place in central's store, audited; the devices still to erase."""
    privacy = PrivacyStore(store)
    with store.transaction():
        held = privacy.holdings(subject)
        requests = privacy.erase(held, at, actor)
    return Erasure(subject.key, {place: len(held.places[place]) for place in PLACES}, requests)


def erase_messages(store: CentralStore, devices: Sequence[tuple[str, str]]) -> dict[str, bytes]:
    """Topic → retained payload for each of ``devices`` (site, device) with requests not yet done."""
    privacy = PrivacyStore(store)
    out: dict[str, bytes] = {}
    for site, device in sorted(set(devices)):
        pending = privacy.requests(pending=True, site=site, device=device)
        if pending:
            body = {"v": 1, "requests": [{"id": r.id, "ratings": list(r.rating_ids)} for r in pending]}
            out[topics.erase(site, device)] = json.dumps(body).encode()
    return out


def reconcile(store: CentralStore, at: datetime) -> list[DeviceRequest]:
    """Mark done the pending requests that their device's latest status reports done; those marked now."""
    privacy = PrivacyStore(store)
    done: list[DeviceRequest] = []
    reports: dict[tuple[str, str], dict[str, Any]] = {}
    for r in privacy.requests(pending=True):
        key = (r.site, r.device_id)
        if key not in reports:
            reports[key] = _erase_report(privacy.device_status_raw(*key))
        report = reports[key]
        if r.id in report.get("done", []) and privacy.mark_done(r.id, at, _int(report.get("erased"))):
            done.append(r)
    return done


def await_devices(store: CentralStore, requests: Sequence[DeviceRequest], seconds: float, *,
                  interval: float = 0.5, sleep: Callable[[float], None] = time.sleep,
                  monotonic: Callable[[], float] = time.monotonic,
                  now: Callable[[], datetime] | None = None) -> list[DeviceRequest]:
    """Reconcile until every one of ``requests`` is done or ``seconds`` have passed (central must be running,
    keeping the devices' statuses); the requests still pending."""
    clock = now or (lambda: datetime.now().astimezone())
    wanted = {r.id for r in requests}
    deadline = monotonic() + seconds
    privacy = PrivacyStore(store)
    while True:
        reconcile(store, clock())
        left = [r for r in privacy.requests(pending=True) if r.id in wanted]
        if not left or monotonic() >= deadline:
            return left
        sleep(interval)


def _erase_report(raw: str | None) -> dict[str, Any]:
    try:
        status = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    report = status.get("erase") if isinstance(status, dict) else None
    return report if isinstance(report, dict) and isinstance(report.get("done"), list) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    """JSON columns (detail, note, payload) shown as the objects they are."""
    out = dict(row)
    for key in ("detail", "note", "payload"):
        if isinstance(out.get(key), str):
            with contextlib.suppress(ValueError):
                out[key] = json.loads(out[key])
    return out
