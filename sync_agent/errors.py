"""One error base for the sync agent."""

from smileloop_core.errors import SmileloopError


class SyncError(SmileloopError):
    """Base of errors the sync agent raises on purpose."""


class BrokerUnreachable(SyncError, ConnectionError):
    """The broker could not be reached (or refused us) within the time allowed."""


class DeliveryTimeout(SyncError, TimeoutError):
    """Connected, but the backlog was not all receipted within the time allowed."""


class ConfigRejected(SyncError, ValueError):
    """A config pushed by central that cannot be applied; the config in force stays."""
