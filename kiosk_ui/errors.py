"""One error base for the kiosk; each error also inherits the builtin it resembles."""

from smileloop_core.errors import SmileloopError


class KioskError(SmileloopError):
    """Base of every error the kiosk raises on purpose."""


class PinError(KioskError, ValueError):
    """A staff PIN that cannot be used (too short, not digits) or a malformed stored hash."""


class BacklightError(KioskError, ValueError):
    """A backlight path or setting that cannot be used."""
