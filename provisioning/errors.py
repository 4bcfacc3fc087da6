"""One error base for provisioning; each error also inherits the builtin it resembles.

The root CLI turns a ``ValueError``-ish one into exit code 2 (the staff member typed something wrong)
and any other into exit code 1 (a condition: the broker said no, the code was already used).
"""

from smileloop_core.errors import SmileloopError


class ProvisioningError(SmileloopError):
    """Base of every error provisioning raises on purpose."""


class InvalidInput(ProvisioningError, ValueError):
    """A bad identifier, a bad option value, a malformed CSV row or claim code."""


class NotFound(ProvisioningError, ValueError):
    """A site, location or device that is not in the inventory (usually a typo)."""


class AlreadyExists(ProvisioningError, ValueError):
    """A site, location or device id that is already taken."""


class BrokerSetupMissing(ProvisioningError, RuntimeError):
    """An action needs the broker files, but ``provision broker-config`` has not been run for this inventory."""


class ClaimRefused(ProvisioningError, PermissionError):
    """A claim code that is unknown, already used or expired."""


class ClaimTimeout(ProvisioningError, TimeoutError):
    """No claim responder answered in time (is ``smileloop provision serve-claims`` running?)."""


class BrokerRefused(ProvisioningError, ConnectionError):
    """The broker could not be reached or refused the connection."""


class BoardCopyFailed(ProvisioningError, RuntimeError):
    """mpremote could not copy the bundle to the board."""
