"""A device bundle: ``device.toml`` (docs/PROTOCOL.md "Device config") with its credentials beside it.

The same bundle goes to a folder, an SD card, a MicroPython board (through mpremote) or, encrypted, to a
kiosk that claims it with a one-time code. Issuing a bundle always makes *new* credentials: the inventory
keeps only hashes, so the old password stops working the moment the broker reloads.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from provisioning.broker import apply_to_broker, broker_dir
from provisioning.credentials import (
    DEVICE_BCRYPT_COST,
    bcrypt_hash,
    mosquitto_hash,
    new_password,
    write_public,
    write_secret,
)
from provisioning.errors import BoardCopyFailed, BrokerSetupMissing, InvalidInput
from provisioning.inventory import Device, Inventory
from provisioning.tls import CertificateAuthority

PASSWORD, CA, CERT, KEY, CONFIG = "password", "ca.pem", "client.pem", "client.key", "device.toml"
SECRET_FILES = frozenset({PASSWORD, KEY})
BUNDLE_FILES = frozenset({PASSWORD, CA, CERT, KEY, CONFIG})
BOARD_DIR = "/smileloop"
# The Wi-Fi button panel's firmware (docs/PANELS.md), copied to the board's root beside the bundle folder.
FIRMWARE_DIR = Path(__file__).resolve().parents[1] / "hardware" / "firmware_wifi"


@dataclass(frozen=True)
class Bundle:
    device: Device
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def password(self) -> str:
        return self.files[PASSWORD].decode().strip()

    def as_dict(self, *, show_secret: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"device": self.device.as_dict(), "files": sorted(self.files)}
        if show_secret:
            out["password"] = self.password
        return out


def bundle_from_files(files: dict[str, bytes]) -> Bundle:
    """A bundle received whole (from a claim): its device is described by its own device.toml."""
    import tomllib

    try:
        data = tomllib.loads(files[CONFIG].decode())
        dev, survey, hours = data["device"], data.get("survey", {}), dict(data.get("hours", {}))
        device = Device(device_id=dev["id"], site=dev["site"], location=dev["location"], state="active",
                        scale=survey.get("scale", "smiley4"), question=survey.get("question", {}),
                        languages=tuple(survey.get("languages", ())), timezone=hours.pop("timezone", "UTC"),
                        hours=hours, created_at="", credentials_at=None, revoked_at=None, last_seen=None,
                        last_state=None, cert_serial=None)
    except (KeyError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InvalidInput(f"the bundle has no usable {CONFIG}: {e}") from None
    return Bundle(device, files)


def device_config(device: Device, url: str, *, tls: bool, client_cert: bool,
                  pin_hash: str | None = None) -> dict[str, Any]:
    """The device.toml tables for ``device``; paths are relative, so the bundle works from any folder. With a
    ``pin_hash`` (the kiosk's PBKDF2 format) staff mode is on from the first boot."""
    broker: dict[str, Any] = {"url": url, "username": device.device_id, "password_file": PASSWORD}
    if tls:
        broker["ca_file"] = CA
        if client_cert:
            broker |= {"cert_file": CERT, "key_file": KEY}
    return {
        "device": {"id": device.device_id, "site": device.site, "location": device.location},
        "survey": {"scale": device.scale, "question": device.question, "languages": list(device.languages)},
        "broker": broker,
        "storage": {"path": "device.db"},
        "hours": {"timezone": device.timezone, **device.hours},
    } | ({"staff": {"pin_hash": pin_hash}} if pin_hash else {})


@dataclass(frozen=True)
class Prepared:
    """New credentials not yet known to the broker: deliver the bundle first, then :func:`commit_bundle`."""

    bundle: Bundle
    password_hash: str
    cert_serial: int | None
    nats_hash: str | None = None  # the same password as bcrypt, for a NATS cluster (provisioning/nats.py)


def prepare_bundle(inventory: Inventory, device_id: str) -> Prepared:
    """Fresh password (and client certificate) and the files around them; the inventory is not touched yet."""
    d = broker_dir(inventory)
    url = inventory.setting("device_url")
    if url is None:
        raise BrokerSetupMissing("no device URL recorded; run 'smileloop provision broker-config' again")
    tls = inventory.setting("tls") == "1"
    client_cert = inventory.setting("client_certs") == "1"
    device = inventory.device(device_id)
    if device.state == "revoked":
        raise InvalidInput(f"device {device_id!r} is revoked; create a new device instead")
    password = new_password()
    files: dict[str, bytes] = {PASSWORD: (password + "\n").encode()}
    serial: int | None = None
    if tls:
        files[CA] = d.ca_cert.read_bytes()
        if client_cert:
            issued = CertificateAuthority.load(d.ca_cert, d.ca_key).issue(device_id)
            files[CERT], files[KEY], serial = issued.cert_pem, issued.key_pem, issued.serial
    files[CONFIG] = ("# smileloop device config, written by 'smileloop provision' (docs/PROTOCOL.md)\n"
                     + tomli_w.dumps(device_config(device, url, tls=tls, client_cert=client_cert,
                                                   pin_hash=inventory.setting(pin_key(device_id))))).encode()
    return Prepared(Bundle(device, files), mosquitto_hash(password), serial,
                    bcrypt_hash(password, cost=DEVICE_BCRYPT_COST))


def commit_bundle(inventory: Inventory, prepared: Prepared, *, reload: bool = True) -> Bundle:
    """Make the prepared credentials the device's only ones, and tell the broker (old ones stop working)."""
    device = inventory.set_credentials(prepared.bundle.device.device_id, prepared.password_hash,
                                       prepared.cert_serial)
    if prepared.nats_hash:
        inventory.set_settings(**{nats_key(device.device_id): prepared.nats_hash})
    if reload:
        apply_to_broker(inventory)
    return Bundle(device, prepared.bundle.files)


def issue_bundle(inventory: Inventory, device_id: str, *, reload: bool = True) -> Bundle:
    """New credentials for ``device_id``, recorded in the broker's files at once, as a bundle."""
    return commit_bundle(inventory, prepare_bundle(inventory, device_id), reload=reload)


def write_bundle(bundle: Bundle, out: Path) -> list[Path]:
    """Write the bundle into ``out``: secrets 0600, the rest 0644. A device.db already there is left alone."""
    out.mkdir(parents=True, exist_ok=True)
    existing = out / CONFIG
    if existing.exists():
        import tomllib

        try:
            other = tomllib.loads(existing.read_text()).get("device", {}).get("id")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            other = None
        if other not in (None, bundle.device.device_id):
            raise InvalidInput(f"{out} already holds the bundle of device {other!r}; choose another --out folder")
    unknown = set(bundle.files) - BUNDLE_FILES
    if unknown:  # a bundle that came over the network names only these files, never a path
        raise InvalidInput(f"the bundle holds files it should not: {', '.join(sorted(unknown))}")
    written = []
    for name, data in sorted(bundle.files.items()):
        path = out / name
        (write_secret if name in SECRET_FILES else write_public)(path, data)
        written.append(path)
    return written


def board_files(bundle: Bundle, folder: Path) -> list[Path]:
    """The bundle as it goes on a MicroPython board: also ``device.json`` (the firmware has no TOML parser)."""
    import tomllib

    paths = write_bundle(bundle, folder)
    config = tomllib.loads(bundle.files[CONFIG].decode())
    paths.append(write_public(folder / "device.json", json.dumps(config, indent=1, sort_keys=True)))
    return paths


def mpremote_program() -> str:
    """mpremote beside this Python (a venv need not be on PATH), else whatever PATH finds."""
    import shutil
    import sys

    beside = Path(sys.executable).parent / "mpremote"
    return str(beside) if beside.exists() else (shutil.which("mpremote") or "mpremote")


def mpremote_command(files: list[Path], port: str, remote_dir: str = BOARD_DIR,
                     mpremote: str | None = None) -> list[str]:
    """The mpremote command line that copies ``files`` into ``remote_dir`` on the board at ``port``.

    One connection: make the folder if missing (``exec``), then ``fs cp`` every file into it.
    """
    if not port or any(c.isspace() for c in port):
        raise InvalidInput(f"board port {port!r} must be a serial device such as /dev/ttyACM0 (or 'auto')")
    name = remote_dir.strip("/")
    if not name or any(c in name for c in "/'\"\\ "):
        raise InvalidInput(f"board folder {remote_dir!r} must be one folder at the root, e.g. /smileloop")
    mkdir = f'import os;"{name}" in os.listdir("/") or os.mkdir("/{name}")'
    return [mpremote or mpremote_program(), "connect", port, "exec", mkdir, "+", "fs", "cp", *[str(f) for f in files],
            f":{remote_dir}/"]


def firmware_files(folder: Path = FIRMWARE_DIR) -> list[Path]:
    """The panel firmware's modules (``main.py`` among them), in a stable order."""
    files = sorted(folder.glob("*.py"))
    if not any(f.name == "main.py" for f in files):
        raise BoardCopyFailed(f"no panel firmware in {folder} (main.py is missing)")
    return files


def board_plan(files: list[Path], firmware: list[Path], port: str, remote_dir: str = BOARD_DIR,
               mpremote: str | None = None) -> list[list[str]]:
    """The mpremote commands, in order: the bundle into ``remote_dir``, the firmware into ``/``, then a read-back
    (``fs sha256sum``: the board hashes what it stored, or mpremote reads the file back where it has no hashlib)."""
    program = mpremote or mpremote_program()
    plan = [mpremote_command(files, port, remote_dir, program)]
    if firmware:
        plan.append([program, "connect", port, "fs", "cp", *[str(f) for f in firmware], ":/"])
    plan.append([program, "connect", port, "fs", "sha256sum", *[f":{remote_dir}/{f.name}" for f in files],
                 *[f":/{f.name}" for f in firmware]])
    return plan


def _run(cmd: list[str], port: str, timeout: float) -> str:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise BoardCopyFailed("mpremote is not installed (pip install 'smileloop[provisioning]')") from None
    except subprocess.TimeoutExpired:
        raise BoardCopyFailed(f"mpremote did not finish within {timeout:g}s; is the board at {port}?") from None
    if result.returncode != 0:
        raise BoardCopyFailed(f"{shlex.join(cmd[:3])}: exit {result.returncode}: "
                              f"{(result.stderr or result.stdout).strip()[-500:]}")
    return result.stdout


def copy_to_board(bundle: Bundle, port: str, *, remote_dir: str = BOARD_DIR, dry_run: bool = False,
                  timeout: float = 120.0, firmware: Path | None = FIRMWARE_DIR) -> list[list[str]]:
    """Copy the bundle (and the panel firmware) to a MicroPython board with mpremote, then read every file back
    and compare; returns the commands (only that, if ``dry_run``). ``firmware=None`` copies the bundle alone.

    The files pass through a private temporary folder that is removed afterwards. A file that does not read
    back as written raises :class:`BoardCopyFailed`, so the caller keeps the old credentials.
    """
    with tempfile.TemporaryDirectory(prefix="smileloop-board-") as tmp:
        os.chmod(tmp, 0o700)
        files = board_files(bundle, Path(tmp))
        code = firmware_files(firmware) if firmware is not None else []
        plan = board_plan(files, code, port, remote_dir)
        if dry_run:
            return plan
        for cmd in plan[:-1]:
            _run(cmd, port, timeout)
        lines = _run(plan[-1], port, timeout).split()
        got = [w for w in lines if len(w) == 64 and all(c in "0123456789abcdef" for c in w)]
        want = [hashlib.sha256(f.read_bytes()).hexdigest() for f in [*files, *code]]
        if got != want:
            bad = [a[1:] for a, g, w in zip(plan[-1][5:], got + [""] * len(want), want, strict=False) if g != w]
            raise BoardCopyFailed(f"the board at {port} does not hold what was copied: {', '.join(bad) or 'no hashes'}"
                                  " (copy again; the credentials are unchanged)")
        return plan


def nats_key(device_id: str) -> str:
    """Where the inventory keeps a device's bcrypt password hash for NATS (beside Mosquitto's in its row)."""
    return f"nats_bcrypt:{device_id}"


def pin_key(device_id: str) -> str:
    """Where the inventory keeps a device's staff PIN hash (never the PIN)."""
    return f"staff_pin_hash:{device_id}"
