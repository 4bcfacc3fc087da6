"""Errors of the shared glue."""


class SmileloopError(Exception):
    """Base of errors raised on purpose by the shared glue."""


class BrokerUrlError(SmileloopError, ValueError):
    """A broker URL that cannot be used."""


class BrokerProcessError(SmileloopError, RuntimeError):
    """A private Mosquitto could not be started."""
