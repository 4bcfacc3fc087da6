"""The rating a visitor leaves, and its wire form (docs/PROTOCOL.md, "Ratings message")."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from smileloop_core.clock import utc_iso
from smileloop_core.scales import Sentiment


@dataclass(frozen=True)
class Consent:
    """What a visitor agreed to when leaving contact details: the version id of the consent text they were shown,
    its language, and when (docs/PROTOCOL.md, ``ratings[].consent``)."""

    text: str
    lang: str
    ts: datetime

    def to_wire(self) -> dict[str, str]:
        return {"text": self.text, "lang": self.lang, "ts": utc_iso(self.ts)}


@dataclass(frozen=True)
class Rating:
    """One tap. ``id`` makes redelivery harmless; ``seq`` lets central spot gaps; ``boot_id`` + ``mono``
    let central repair ``ts`` when the device's wall clock was wrong."""

    id: str
    seq: int
    ts: datetime
    scale: str
    value: int
    location: str
    sentiment: Sentiment
    boot_id: str
    mono: float
    reason: str | None = None
    comment: str | None = None
    contact: str | None = None
    flags: tuple[str, ...] = field(default_factory=tuple)
    rev: int = 0
    consent: Consent | None = None  # required with ``contact``: central drops a contact that comes without it

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "id": self.id,
            "seq": self.seq,
            "ts": utc_iso(self.ts),
            "scale": self.scale,
            "value": self.value,
            "location": self.location,
            "reason": self.reason,
            "boot": self.boot_id,
            "mono": round(self.mono, 3),
        }
        if self.rev:
            wire["rev"] = self.rev
        if self.comment:
            wire["comment"] = self.comment
        if self.contact:
            wire["contact"] = self.contact
            if self.consent is not None:
                wire["consent"] = self.consent.to_wire()
        if self.flags:
            wire["flags"] = list(self.flags)
        return wire
