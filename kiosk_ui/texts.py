"""Labels for configured identifiers: reason chips and scale points.

Reasons are configured as identifiers (``waiting_time``); known ones get a translated label, any
other shows the identifier as words, so a new reason works before its translation exists.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from kiosk_ui.i18n import N_
from smileloop_core.hours import HoursConfig, next_change

REASON_LABELS: dict[str, str] = {
    "waiting_time": N_("Waiting time"),
    "staff": N_("Staff"),
    "cleanliness": N_("Cleanliness"),
    "product": N_("Products"),
    "price": N_("Price"),
    "speed": N_("Speed"),
    "service": N_("Service"),
    "information": N_("Information"),
    "parking": N_("Parking"),
    "atmosphere": N_("Atmosphere"),
    "accessibility": N_("Accessibility"),
    "other": N_("Something else"),
}

# Words under each face, per scale; the face shape and the symbol carry the meaning without colour too.
SCALE_WORDS: dict[str, tuple[str, ...]] = {
    "smiley4": (N_("Very unhappy"), N_("Unhappy"), N_("Happy"), N_("Very happy")),
    "smiley5": (N_("Very unhappy"), N_("Unhappy"), N_("Neither"), N_("Happy"), N_("Very happy")),
    "csat5": (N_("Very dissatisfied"), N_("Dissatisfied"), N_("Neutral"), N_("Satisfied"),
              N_("Very satisfied")),
}

NPS_LOW = N_("Not at all likely")
NPS_HIGH = N_("Extremely likely")


def reason_label(reason: str) -> str:
    """The msgid for a reason chip (translate it with the visitor's language)."""
    return REASON_LABELS.get(reason, reason.replace("_", " ").capitalize())


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
