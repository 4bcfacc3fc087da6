"""The device core: rating scales, the local SQLite store and outbox, config, and the Recorder.

Every input (the Kivy kiosk, a button panel, the CLI) records a tap through :class:`Recorder`,
which validates it against the configured scale and stores it durably before it returns.
"""

from device.config import DeviceConfig, load_config
from device.errors import ConfigError, DeviceError, InvalidRating, StoreError
from device.recorder import Recorder
from device.store import DeviceStore
from smileloop_core.clock import Clock, FakeClock, SystemClock
from smileloop_core.model import Rating
from smileloop_core.scales import SCALES, Scale, get_scale

__all__ = [
    "SCALES",
    "Clock",
    "ConfigError",
    "DeviceConfig",
    "DeviceError",
    "DeviceStore",
    "FakeClock",
    "InvalidRating",
    "Rating",
    "Recorder",
    "Scale",
    "StoreError",
    "SystemClock",
    "get_scale",
    "load_config",
]
