"""The project's root error, and the errors of the shared ground.

Every package has one error base of its own (``DeviceError``, ``CentralError``, ``SyncError``…), each under
:class:`SmileloopError`, and each concrete error also inherits the builtin it resembles: the command maps
``ValueError`` kinds (bad input) to exit 2 and the rest (a condition) to exit 1, without knowing the parts.
"""


class SmileloopError(Exception):
    """Base of every error smileloop raises on purpose."""


class InvalidRating(SmileloopError, ValueError):
    """A tap that does not fit the scale (out of range, unknown scale, bad reason). Nothing was stored."""


class BrokerUrlError(SmileloopError, ValueError):
    """A broker URL that cannot be used."""


class BrokerProcessError(SmileloopError, RuntimeError):
    """A private Mosquitto could not be started."""


class PinError(SmileloopError, ValueError):
    """A staff PIN that cannot be used (too short, not digits) or a malformed stored hash."""
