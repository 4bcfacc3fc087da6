"""How long central keeps personal data, per kind, and the purge that enforces it (docs/ALERTS.md, "Privacy").

The periods are the organisation's, in the ``retention`` section of the org document (``smileloop org``):

```toml
[retention]
contact_days = 65                # a visitor's phone number or e-mail, and their consent record
contact_after_followup_days = 0  # … or this long after their follow-up was sent (or given up), if sooner
comment_days = 180               # free text: the original (admins only) and its masked form
rejected_days = 30               # raw payloads of rejected messages and ratings
delivery_days = 90               # delivery records and their attempts (pending ones are kept)
audit_days = 400                 # alert and organisation audit rows
```

The ratings themselves stay, anonymous, for trends. The central process purges from its periodic tick (at most
every :attr:`RetentionTask.every` seconds, on its injected clock); each purge is idempotent — a second run finds
nothing — and logs what it removed as counts, never the data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from central.store_retention import Purged, purge
from smileloop_core.clock import Clock

if TYPE_CHECKING:
    from central.store import CentralStore

log = logging.getLogger("smileloop.central")


@dataclass(frozen=True)
class Retention:
    """The periods in days; :meth:`from_doc` reads and checks the org document's ``retention`` section."""

    contact_days: int = 65
    contact_after_followup_days: int = 0
    comment_days: int = 180
    rejected_days: int = 30
    delivery_days: int = 90
    audit_days: int = 400

    @classmethod
    def from_doc(cls, raw: Any) -> Retention:
        """Raises ``ValueError`` naming the key (``retention.contact_days: …``)."""
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ValueError("retention: must be a table of kind_days = days")
        known = {f.name for f in fields(cls)}
        values: dict[str, int] = {}
        for key, value in raw.items():
            if key not in known:
                raise ValueError(f"retention.{key}: unknown key (expected one of {', '.join(sorted(known))})")
            low = 0 if key == "contact_after_followup_days" else 1
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 3650:
                raise ValueError(f"retention.{key}: days, a whole number from {low} to 3650")
            values[key] = value
        return cls(**values)


class RetentionTask:
    """The purge as periodic work: ``task.run(now)`` from the service's tick purges when ``every`` seconds of the
    clock's monotonic time have passed (the first call purges at once); the periods are read from the org
    document each time, so a change applies at the next purge."""

    def __init__(self, store: CentralStore, clock: Clock, *, every: float = 3600.0) -> None:
        self.store = store
        self.clock = clock
        self.every = every
        self._last: float | None = None

    def policy(self) -> Retention:
        return Retention.from_doc(self.store.document("org")[0].get("retention"))

    def run(self, now: datetime | None = None, *, force: bool = False) -> Purged | None:
        """Purge if due (or ``force``); what was removed, or None when not due."""
        mono = self.clock.monotonic()
        if not force and self._last is not None and mono - self._last < self.every:
            return None
        self._last = mono
        done = purge(self.store, self.policy(), now or self.clock.now())
        if done.total:
            log.info("retention purge: %d contacts, %d comments, %d rejected payloads, %d deliveries, "
                     "%d audit rows removed", done.contacts, done.comments, done.rejected, done.deliveries,
                     done.audit)
        return done
