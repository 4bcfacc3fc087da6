"""Config pushed by central (docs/PROTOCOL.md, "Config push"): validate, then apply atomically or not at all.

Central's config never rewrites the staff's ``device.toml``: it is written whole, as an overlay file beside
it (``device.central.toml``) that :func:`device.config.load_config` lays over the staff file. The overlay is
replaced with one ``os.replace`` after the merged result has validated, so a reader (the kiosk reloads its
config between visitors) sees the old config or the new one, never half of each. The staff file's mtime is
then touched (its content never), so a reader that watches only that file notices the change.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from device import (
    CENTRAL_SECTIONS,
    ConfigError,
    DeviceConfig,
    central_overlay_path,
    check_push,
    load_config,
    merge_central,
    parse_config,
)
from smileloop_core.wire import decode_v1
from sync_agent.errors import ConfigRejected

MAX_PUSH_BYTES = 64_000


@dataclass(frozen=True)
class PushResult:
    """What the device says back on its status topic about the last push."""

    version: int | None
    state: str  # "applied" | "unchanged" | "rejected"
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "state": self.state, "reason": self.reason}


def parse_push(payload: bytes) -> tuple[int, dict[str, Any]]:
    """``{"v": 1, "version": N, "config": {…}}`` → (N, config); raises :class:`ConfigRejected` naming the fault."""
    try:
        msg = decode_v1(payload, what="config push", limit=MAX_PUSH_BYTES)
    except ValueError as e:
        raise ConfigRejected(str(e)) from None
    version = msg.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigRejected(f"config push 'version' must be a whole number ≥ 1, got {version!r}")
    config = msg.get("config")
    if not isinstance(config, dict):
        raise ConfigRejected(f"config push version {version}: 'config' must be an object")
    for name, table in config.items():
        if name not in CENTRAL_SECTIONS:
            raise ConfigRejected(f"config push version {version}: [{name}] cannot be set by central; "
                                 f"only {', '.join(CENTRAL_SECTIONS)}")
        if not isinstance(table, dict):
            raise ConfigRejected(f"config push version {version}: [{name}] must be an object")
    try:
        check_push(config, f"config push version {version}")  # the same check central makes before it sends
    except ConfigError as e:
        raise ConfigRejected(str(e)) from None
    return version, config


def version_of(payload: bytes) -> int | None:
    """The version a push claims, if it can be read at all (to name it in the rejection)."""
    try:
        version = json.loads(payload).get("version")
    except (ValueError, AttributeError):
        return None
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def apply_push(current: DeviceConfig, payload: bytes) -> tuple[DeviceConfig, PushResult]:
    """Validate a push against the staff file and install it; the config now in force and what to report.

    Raises :class:`ConfigRejected` (the old config stays in force) for anything that does not validate,
    an older version than the one in force, or an overlay that cannot be written.
    """
    version, table = parse_push(payload)
    if version == current.version:
        return current, PushResult(version, "unchanged")  # the retained push again, at each reconnect
    if version < current.version:
        raise ConfigRejected(f"config push version {version} is older than version {current.version} in force")
    staff_path = current.source
    if staff_path is None:
        raise ConfigRejected("this device's config has no file to lay central's config beside")
    try:
        staff = tomllib.loads(staff_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigRejected(f"cannot read the staff config {staff_path}: {e}") from None
    overlay = {**table, "meta": {"version": version}}
    label = f"config push version {version}"
    try:
        parse_config(merge_central(staff, overlay, label), label, staff_path.resolve().parent)
    except ConfigError as e:
        raise ConfigRejected(str(e)) from None
    try:
        text = tomli_w.dumps(overlay)
    except (TypeError, ValueError) as e:  # e.g. a JSON null, which TOML cannot hold
        raise ConfigRejected(f"{label}: {e}") from None
    path = central_overlay_path(staff_path)
    try:
        _replace_atomically(path, text)
    except OSError as e:
        raise ConfigRejected(f"{label}: could not write {path}: {e.strerror or e}") from None
    installed = load_config(staff_path)
    if installed.version != version:  # the overlay was set aside by load_config; say so, keep nothing half-done
        raise ConfigRejected(f"{label}: written but not in force (see the device log)")
    return installed, PushResult(version, "applied")


def _replace_atomically(path: Path, text: str) -> None:
    """Write beside, fsync, rename over, fsync the folder: the old file or the new one, whatever happens."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
