"""Reason identifiers and their labels: the kiosk's chips and central's alerts and outcomes name a reason alike.

Reasons are configured as identifiers (``waiting_time``); known ones get a translatable label, any other shows
the identifier as words, so a new reason works before its translation exists.
"""

from __future__ import annotations

from smileloop_core.i18n import N_

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


def reason_label(reason: str) -> str:
    """The msgid for a reason (translate it with the reader's language)."""
    return REASON_LABELS.get(reason, reason.replace("_", " ").capitalize())
