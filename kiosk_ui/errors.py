"""One error base for the kiosk; each error also inherits the builtin it resembles."""

from smileloop_core.errors import PinError, SmileloopError

__all__ = ["BacklightError", "KioskError", "PinError"]  # PinError is the shared one (smileloop_core.pin)


class KioskError(SmileloopError):
    """Base of every error the kiosk raises on purpose."""


class BacklightError(KioskError, ValueError):
    """A backlight path or setting that cannot be used."""
