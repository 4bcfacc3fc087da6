"""The Recorder: the one entry point every input (kiosk, button panel, CLI) calls to record a tap.

It validates the tap against the configured scale, flags repeat presses within the response
interval (kept, but not counted as a new visitor), and returns only once the tap is durable.
"""

from __future__ import annotations

import logging
import unicodedata
import uuid
from collections.abc import Callable
from datetime import timedelta

from device import consent as consents
from device.config import DeviceConfig
from device.doorbell import Bell
from device.store import DeviceStore
from smileloop_core.clock import Clock, SystemClock
from smileloop_core.errors import InvalidRating
from smileloop_core.model import Consent, Rating
from smileloop_core.scales import get_scale

log = logging.getLogger(__name__)

MAX_COMMENT = 500
MAX_CONTACT = 200
REPEAT = "repeat"
TEST = "test"


def _clean_text(text: str | None, limit: int, what: str) -> str | None:
    if text is None:
        return None
    cleaned = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\n\t").strip()
    if len(cleaned) > limit:
        raise InvalidRating(f"{what} is {len(cleaned)} characters; at most {limit}")
    return cleaned or None


def _check_consent(contact: str | None, consent: Consent | None) -> Consent | None:
    """A contact is stored only with the visitor's consent (which text, which language, when); consent alone is
    nothing to keep."""
    if contact and consent is None:
        raise InvalidRating("a contact needs the visitor's consent (the consent text's version, language and time)")
    return consent if contact else None


class Recorder:
    """Validate and durably store taps for one device.

    >>> rec = Recorder(DeviceStore(tmp / "device.db"), config)   # doctest: +SKIP
    >>> rec.record(1).sentiment                                  # doctest: +SKIP
    'negative'
    """

    def __init__(self, store: DeviceStore, config: DeviceConfig, *, clock: Clock | None = None) -> None:
        self.store = store
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.scale = get_scale(config.survey.scale)
        self._listeners: list[Callable[[Rating], None]] = []
        self._bell = Bell(store.path)  # wakes a sync agent in another process the moment a tap is durable
        last = store.last_rating()
        self._last: tuple[str, float] | None = (last.boot_id, last.mono) if last else None

    @property
    def reasons(self) -> set[str]:
        return set(self.config.survey.reasons_negative) | set(self.config.survey.reasons_positive)

    def on_record(self, listener: Callable[[Rating], None]) -> None:
        """Call ``listener(rating)`` after each durable tap (e.g. to wake a sync agent in this process)."""
        self._listeners.append(listener)

    def record(self, value: object, *, reason: str | None = None, comment: str | None = None,
               contact: str | None = None, consent: Consent | None = None, age: float = 0.0,
               test: bool = False) -> Rating:
        """Store one tap; raises :class:`InvalidRating` (nothing stored) or :class:`StoreError`.

        ``age``: seconds since the tap really happened, for inputs that held it a while (a button panel
        whose host was down); its time and monotonic reading are set back by that much. ``test``: a staff
        member checking the path; flagged, so central keeps it out of alerts and patterns. ``contact`` needs
        ``consent``: what the visitor agreed to, sent beside it.
        """
        if not 0 <= age < 7 * 86400:
            raise InvalidRating(f"age {age!r} must be 0 or more seconds and under a week")
        checked = self.scale.validate(value)
        self._check_reason(reason)
        comment = _clean_text(comment, MAX_COMMENT, "comment")
        contact = _clean_text(contact, MAX_CONTACT, "contact")
        consent = _check_consent(contact, consent)
        boot, mono = self.clock.boot_id(), self.clock.monotonic() - age
        flags: tuple[str, ...] = (TEST,) if test else ()
        if not test and self._last is not None and self._last[0] == boot and \
                0 <= mono - self._last[1] < self.config.survey.response_interval:
            flags = (REPEAT,)
        now = self.clock.now() - timedelta(seconds=age)
        rating = self.store.add(lambda seq: Rating(
            id=str(uuid.uuid4()), seq=seq, ts=now, scale=self.scale.name, value=checked,
            location=self.config.location, sentiment=self.scale.sentiment(checked), boot_id=boot, mono=mono,
            reason=reason, comment=comment, contact=contact, flags=flags, consent=consent))
        if not test:
            self._last = (boot, mono)
        self._notify(rating)
        return rating

    def amend(self, rating_id: str, *, reason: str | None = None, comment: str | None = None,
              contact: str | None = None, consent: Consent | None = None) -> Rating:
        """Attach the visitor's follow-up answer to the tap already stored (the first tap always counts)."""
        self._check_reason(reason)
        fields: dict[str, str | None] = {}
        if reason is not None:
            fields["reason"] = reason
        if comment is not None:
            fields["comment"] = _clean_text(comment, MAX_COMMENT, "comment")
        if contact is not None:
            fields["contact"] = _clean_text(contact, MAX_CONTACT, "contact")
            fields["consent"] = consents.dump(_check_consent(fields["contact"], consent))
        rating = self.store.amend(rating_id, **fields)
        self._notify(rating)
        return rating

    def _check_reason(self, reason: str | None) -> None:
        if reason is not None and reason not in self.reasons:
            raise InvalidRating(f"reason {reason!r} is not configured; configured: {', '.join(sorted(self.reasons))}")

    def _notify(self, rating: Rating) -> None:
        self._bell.ring()
        for listener in self._listeners:
            try:
                listener(rating)
            except Exception:  # a listener must never undo or hide a stored tap
                log.exception("on_record listener failed for rating %s", rating.id)
