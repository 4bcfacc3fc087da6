"""Validation of ratings messages (docs/PROTOCOL.md, "Ratings message").

A malformed message is rejected whole with a reason; within a good message, each bad rating is
rejected on its own and the valid ones of the same message are still stored. Unknown fields are
ignored, so devices can be newer than central.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from central.errors import InvalidMessage
from device.clock import parse_utc
from device.errors import InvalidRating
from device.scales import SCALES, get_scale
from smileloop.wire import decode_v1

MAX_MESSAGE_BYTES = 1_000_000


@dataclass(frozen=True)
class IncomingRating:
    id: str
    seq: int
    ts: datetime
    scale: str
    value: int
    sentiment: str
    location: str
    reason: str | None
    comment: str | None
    contact: str | None
    flags: tuple[str, ...]
    boot_id: str | None
    mono: float | None
    rev: int
    ts_device: datetime | None = None  # the device's own ts when central repaired ``ts``; else None


@dataclass(frozen=True)
class SentStamp:
    """The device's clocks at publish time (``sent``): wall time, boot id, monotonic seconds."""

    ts: datetime | None
    boot: str | None
    mono: float | None


@dataclass
class IngestResult:
    site: str
    device: str
    ratings: list[IncomingRating] = field(default_factory=list)
    sent: SentStamp | None = None
    rejected: list[tuple[str | None, str]] = field(default_factory=list)  # (rating id if known, reason)


def _str(obj: dict[str, Any], key: str, *, required: bool = True, limit: int = 200) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidMessage(f"'{key}' is missing")
        return None
    if not isinstance(value, str) or not value:
        raise InvalidMessage(f"'{key}' must be a non-empty string")
    if len(value) > limit:
        raise InvalidMessage(f"'{key}' is longer than {limit} characters")
    return value


def _rating(raw: Any) -> IncomingRating:
    if not isinstance(raw, dict):
        raise InvalidMessage("a rating must be a JSON object")
    rid = _str(raw, "id")
    assert rid is not None
    try:
        uuid.UUID(rid)
    except ValueError:
        raise InvalidMessage(f"'id' {rid!r} is not a UUID") from None
    seq = raw.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise InvalidMessage("'seq' must be a whole number ≥ 1")
    ts_text = _str(raw, "ts")
    try:
        ts = parse_utc(ts_text or "")
    except ValueError:
        raise InvalidMessage(f"'ts' {ts_text!r} is not an RFC 3339 timestamp with a zone") from None
    scale_name = _str(raw, "scale")
    if scale_name not in SCALES:
        raise InvalidMessage(f"'scale' {scale_name!r} is not one of {', '.join(SCALES)}")
    scale = get_scale(scale_name)
    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMessage(f"'value' must be a whole number, got {value!r}")
    try:
        scale.validate(value)
    except InvalidRating as e:
        raise InvalidMessage(f"'value' {e}") from None
    flags = raw.get("flags") or []
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise InvalidMessage("'flags' must be a list of strings")
    mono = raw.get("mono")
    if mono is not None and (isinstance(mono, bool) or not isinstance(mono, int | float)):
        raise InvalidMessage("'mono' must be a number")
    rev = raw.get("rev", 0)
    if isinstance(rev, bool) or not isinstance(rev, int) or rev < 0:
        raise InvalidMessage("'rev' must be a whole number ≥ 0")
    return IncomingRating(
        id=rid, seq=seq, ts=ts, scale=scale.name, value=value, sentiment=scale.sentiment(value),
        location=_str(raw, "location") or "", reason=_str(raw, "reason", required=False, limit=100),
        comment=_str(raw, "comment", required=False, limit=1000),
        contact=_str(raw, "contact", required=False, limit=300), flags=tuple(flags),
        boot_id=_str(raw, "boot", required=False), mono=float(mono) if mono is not None else None, rev=rev)


def _sent(raw: Any) -> SentStamp | None:
    """The optional ``sent`` stamp; a malformed one is ignored (it only serves clock repair)."""
    if not isinstance(raw, dict):
        return None
    ts: datetime | None = None
    if isinstance(raw.get("ts"), str):
        try:
            ts = parse_utc(raw["ts"])
        except ValueError:
            ts = None
    mono = raw.get("mono")
    boot = raw.get("boot")
    return SentStamp(ts=ts, boot=boot if isinstance(boot, str) else None,
                     mono=float(mono) if isinstance(mono, int | float) and not isinstance(mono, bool) else None)


def parse_message(topic_site: str, topic_device: str, payload: bytes) -> IngestResult:
    """Validate one ratings message; raises :class:`InvalidMessage` only if nothing in it is usable."""
    try:
        msg = decode_v1(payload, what="message", limit=MAX_MESSAGE_BYTES)
    except ValueError as e:
        raise InvalidMessage(str(e)) from None
    for key, expected in (("device", topic_device), ("site", topic_site)):
        if msg.get(key) != expected:
            raise InvalidMessage(f"'{key}' {msg.get(key)!r} does not match the topic's {expected!r}")
    ratings = msg.get("ratings")
    if not isinstance(ratings, list) or not ratings:
        raise InvalidMessage("'ratings' must be a non-empty list")
    result = IngestResult(site=topic_site, device=topic_device, sent=_sent(msg.get("sent")))
    for raw in ratings:
        try:
            result.ratings.append(_rating(raw))
        except InvalidMessage as e:
            rid = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
            result.rejected.append((rid, str(e)))
    return result
