"""Alert rules evaluated as ratings arrive."""

from __future__ import annotations

from typing import Any

from central.ingest import IncomingRating
from device.clock import utc_iso


def negative_rating(r: IncomingRating, site: str, device: str) -> dict[str, Any] | None:
    """An alert for each negative rating; a repeat press (same visitor, within the response interval) is not."""
    if r.sentiment != "negative" or "repeat" in r.flags:
        return None
    return {
        "kind": "negative_rating", "site": site, "location": r.location, "device_id": device, "rating_id": r.id,
        "title": f"Unhappy visitor at {site} / {r.location}",
        "detail": {"value": r.value, "scale": r.scale, "reason": r.reason, "comment": r.comment,
                   "rating_ts": utc_iso(r.ts)},
    }
