"""Erase requests from central (docs/PROTOCOL.md, "Erase request"): a visitor asked to be forgotten, and this
device may still hold their contact details or comment on ratings central names.

The message is retained and lists every request central has not yet seen done, so a device offline for a week
gets them when it connects. Erasing is idempotent, so the same message again (at each reconnect) is harmless.
What was done is reported on the status topic (``erase``: the request ids done and the rows erased), where
central reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device import StoreError
from device.store_tools import erase_details
from smileloop_core.ids import is_id
from smileloop_core.wire import decode_v1

MAX_ERASE_BYTES = 1_000_000


@dataclass(frozen=True)
class EraseResult:
    """What the status says about the last erase message: the request ids done, the rows that held details."""

    done: tuple[str, ...] = ()
    erased: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"done": list(self.done), "erased": self.erased, "error": self.error}


def parse_erase(payload: bytes) -> list[tuple[str, list[str]]]:
    """``{"v": 1, "requests": [{"id", "ratings": [...]}, …]}`` → [(request id, rating ids)]; ValueError if not."""
    msg = decode_v1(payload, what="erase request", limit=MAX_ERASE_BYTES)
    requests = msg.get("requests")
    if not isinstance(requests, list):
        raise ValueError("erase request: 'requests' must be a list")
    out = []
    for r in requests:
        rid, ratings = (r.get("id"), r.get("ratings")) if isinstance(r, dict) else (None, None)
        if not isinstance(rid, str) or not is_id(rid) or not isinstance(ratings, list) \
                or not all(isinstance(x, str) for x in ratings):
            raise ValueError("erase request: each request needs an 'id' and a list of rating ids 'ratings'")
        out.append((rid, ratings))
    return out


def handle_erase(store_path: Path, payload: bytes) -> EraseResult | None:
    """Erase what the message names in the device store; None for an empty (cleared) retained message."""
    if not payload:
        return None
    try:
        requests = parse_erase(payload)
    except ValueError as e:
        return EraseResult(error=str(e))
    try:
        erased = erase_details(store_path, [i for _, ids in requests for i in ids])
    except StoreError as e:
        return EraseResult(error=str(e))  # not done: central keeps the request, the retained message comes again
    return EraseResult(tuple(rid for rid, _ in requests), erased)
