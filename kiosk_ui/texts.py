"""Labels for configured identifiers: reason chips (shared with central, :mod:`smileloop_core.reasons`) and
scale points."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from kiosk_ui.i18n import N_
from smileloop_core.hours import HoursConfig, next_change
from smileloop_core.reasons import REASON_LABELS, reason_label

# Words under each face, per scale; the face shape and the symbol carry the meaning without colour too.
SCALE_WORDS: dict[str, tuple[str, ...]] = {
    "smiley4": (N_("Very unhappy"), N_("Unhappy"), N_("Happy"), N_("Very happy")),
    "smiley5": (N_("Very unhappy"), N_("Unhappy"), N_("Neither"), N_("Happy"), N_("Very happy")),
    "csat5": (N_("Very dissatisfied"), N_("Dissatisfied"), N_("Neutral"), N_("Satisfied"),
              N_("Very satisfied")),
}

NPS_LOW = N_("Not at all likely")
NPS_HIGH = N_("Extremely likely")

__all__ = ["NPS_HIGH", "NPS_LOW", "REASON_LABELS", "SCALE_WORDS", "opening_time", "reason_label"]


def opening_time(hours: HoursConfig, now: datetime, lang: str) -> str | None:
    """When a closed kiosk opens again, in the site's local time: "08:00" today, else "Wednesday 08:00"."""
    change = next_change(hours, now)
    if change is None:
        return None
    from babel.dates import format_datetime

    tz = ZoneInfo(hours.timezone)
    local = change.astimezone(tz)
    same_day = local.date() == now.astimezone(tz).date()
    try:
        return str(format_datetime(local, "HH:mm" if same_day else "EEEE HH:mm", locale=lang))
    except ValueError:  # a language Babel does not know
        return local.strftime("%H:%M" if same_day else "%a %H:%M")
