"""One error base for central."""


class CentralError(Exception):
    """Base of errors central raises on purpose."""


class InvalidMessage(CentralError, ValueError):
    """A message (or one rating in it) that breaks the protocol; stored as rejected with this reason."""
