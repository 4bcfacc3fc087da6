"""The kiosk's vocabulary, shared by the flow, its parts and the screens: the steps, and the times it runs by."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Step(StrEnum):
    RATING = "rating"
    REASON = "reason"
    DETAILS = "details"
    THANKS = "thanks"
    SLEEP = "sleep"
    OUT_OF_ORDER = "out_of_order"
    PIN = "pin"
    STAFF = "staff"


# Steps a visitor or staff member is in the middle of: the idle reset applies, config waits.
ENGAGED = {Step.REASON, Step.DETAILS, Step.PIN, Step.STAFF}


@dataclass(frozen=True)
class Timings:
    """Seconds (and counts) the kiosk runs by; the survey's own ``idle_reset`` comes from the config."""

    thanks: float = 4.0  # the thank-you screen, then back to the start
    config_check: float = 3.0  # at most this often, between visitors, look for a pushed config
    outcomes_refresh: float = 5.0  # re-read "you said, we did" from the store
    outcome_rotate: float = 8.0  # show each outcome this long
    disk_check: float = 10.0
    recover_every: float = 30.0  # out of order: try to reopen the store
    status_refresh: float = 5.0  # staff mode re-reads the backlog and the agent's status
    staff_taps: int = 5  # taps in the top-left corner …
    staff_window: float = 3.0  # … within this many seconds open the PIN pad
    pin_attempts: int = 5  # wrong PINs before the pad locks …
    pin_lockout: float = 60.0  # … for this long, doubled for each further wrong PIN …
    pin_lockout_max: float = 3600.0  # … up to this
