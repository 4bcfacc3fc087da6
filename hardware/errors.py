"""One error base for the hardware part."""

from smileloop_core.errors import SmileloopError


class HardwareError(SmileloopError):
    """Base of errors the hardware part raises on purpose."""


class PanelProtocolError(HardwareError, ValueError):
    """A line from a panel that does not follow the protocol (docs/PROTOCOL.md, "Button panel")."""


class PanelConfigError(HardwareError, ValueError):
    """A pin map or port that cannot be used."""
