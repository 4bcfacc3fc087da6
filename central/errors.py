"""One error base for central; each error also inherits the builtin it resembles, so the root CLI maps
user mistakes (ValueError) to exit 2 and conditions to exit 1."""

from smileloop_core.errors import SmileloopError


class CentralError(SmileloopError):
    """Base of errors central raises on purpose."""


class InvalidMessage(CentralError, ValueError):
    """A message (or one rating in it) that breaks the protocol; stored as rejected with this reason."""


class StoreError(CentralError, RuntimeError):
    """The database cannot be opened or used."""


class StoreMissing(CentralError, ValueError):
    """A command that reads a store was pointed at one that does not exist (it is not created)."""


class AlertNotFound(CentralError, LookupError):
    """No alert has that id (or id prefix)."""


class InvalidTransition(CentralError, ValueError):
    """A lifecycle step that the alert's state does not allow, or one missing what it requires."""


class OrgError(CentralError, ValueError):
    """The org tree (sites, locations, devices, contacts) is not valid; the message names the key."""


class RuleError(CentralError, ValueError):
    """A rule setting that does not exist or has the wrong type; the message names the rule and key."""


class DeliveryFailed(CentralError, RuntimeError):
    """One attempt to deliver an alert failed; the message says why (recorded with the attempt, retried)."""


class FleetError(CentralError, ValueError):
    """A fleet command that cannot go ahead as asked (no such devices, a bad option); nothing was sent."""


class PublishFailed(CentralError, RuntimeError):
    """The broker could not be reached, refused the connection or refused a config push."""


class AccessDenied(CentralError, PermissionError):
    """A console user or API token may not see or do this (wrong role, another site, bad login)."""


class LoginRefused(AccessDenied):
    """A login that failed or is locked out for now; ``retry_after`` is how many seconds to wait (0: just wrong)."""

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AccountError(CentralError, ValueError):
    """A console account that cannot be created or changed as asked (bad name, role, site or password)."""


class DashboardError(CentralError, ValueError):
    """A dashboard asked for with a bad date, a range too long or backwards, or a location without its site."""
