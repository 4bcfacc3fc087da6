"""One error base for the device core; each error also inherits the builtin it resembles."""

from smileloop_core.errors import InvalidRating, SmileloopError

__all__ = ["ConfigError", "DeviceError", "InvalidRating", "StoreError"]


class DeviceError(SmileloopError):
    """Base of every error the device core raises on purpose."""



class ConfigError(DeviceError, ValueError):
    """A device config file that cannot be used; names the file and the key."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        super().__init__(f"{path}: {key}: {problem}")


class StoreError(DeviceError, OSError):
    """The local store cannot record (disk full, corrupt file, read-only medium)."""
