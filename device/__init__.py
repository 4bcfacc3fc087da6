"""The device core: the Recorder every input calls, the local SQLite store and outbox, the device config,
the doorbell and the staff PIN lockout. What the kiosk, the sync agent, the panels, provisioning and the
command may use is named here; they import it from ``device``.

Every input (the Kivy kiosk, a button panel, the CLI) records a tap through :class:`Recorder`, which validates
it against the configured scale and stores it durably before it returns.
"""

from device.cli import MIX, config_option, open_recorder, simulate, tap
from device.config import (
    CENTRAL_KEYS,
    CENTRAL_SECTIONS,
    DeviceConfig,
    StorageConfig,
    SyncConfig,
    central_overlay_path,
    check_push,
    load_config,
    merge_central,
    parse_config,
)
from device.doorbell import BellListener
from device.errors import ConfigError, DeviceError, StoreError
from device.lockout import PinLockout, load_pin_lockout, save_pin_lockout
from device.recorder import MAX_COMMENT, MAX_CONTACT, Recorder
from device.store import DeviceStore

__all__ = [
    "CENTRAL_KEYS",
    "CENTRAL_SECTIONS",
    "MAX_COMMENT",
    "MAX_CONTACT",
    "MIX",
    "BellListener",
    "ConfigError",
    "DeviceConfig",
    "DeviceError",
    "DeviceStore",
    "PinLockout",
    "Recorder",
    "StorageConfig",
    "StoreError",
    "SyncConfig",
    "central_overlay_path",
    "check_push",
    "config_option",
    "load_config",
    "load_pin_lockout",
    "merge_central",
    "open_recorder",
    "parse_config",
    "save_pin_lockout",
    "simulate",
    "tap",
]
