"""The device config: one TOML file (contract in docs/PROTOCOL.md, "Device config").

Every problem is reported as ``<file>: <key>: <problem>`` so staff can fix it without support.
Relative paths inside the file are relative to the file's folder, so a provisioned bundle can be
copied anywhere (a folder, an SD card) and still work.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device.errors import ConfigError
from smileloop_core.errors import PinError
from smileloop_core.hours import WEEKDAYS, HoursConfig, HoursError, parse_hours
from smileloop_core.ids import is_id
from smileloop_core.pin import check_pin_hash
from smileloop_core.scales import SCALES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerConfig:
    """``url`` is the first of ``urls``: the agent tries them in order, moving on when one fails, and comes
    back round (the same credentials and CA for every one)."""

    url: str = "mqtt://127.0.0.1:1883"
    urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.urls:  # built with ``url`` alone: that one broker
            object.__setattr__(self, "urls", (self.url,))
    username: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True)
class SurveyConfig:
    scale: str = "smiley4"
    question: dict[str, str] = field(default_factory=lambda: {"en": "How was your visit today?"})
    languages: tuple[str, ...] = ("en", "sv")
    reasons_negative: tuple[str, ...] = ("waiting_time", "staff", "cleanliness", "product", "price")
    reasons_positive: tuple[str, ...] = ("staff", "speed", "cleanliness", "product")
    response_interval: float = 3.0  # seconds; a tap sooner than this after the last is flagged "repeat"
    idle_reset: float = 20.0  # seconds without a touch before the kiosk returns to the start
    ask_contact: bool = True


@dataclass(frozen=True)
class StorageConfig:
    path: Path = Path("device.db")
    retention_days: float = 30.0
    min_free_mb: float = 50.0


@dataclass(frozen=True)
class SyncConfig:
    batch_size: int = 100
    batch_delay: float = 1.0  # seconds a non-negative rating may wait to fill a batch
    ack_timeout: float = 15.0  # seconds without a central receipt before a rating is sent again
    heartbeat: float = 60.0
    max_rate: float = 2000.0  # ratings per second while draining a backlog
    max_inflight: int = 20
    reconnect_min: float = 0.5
    reconnect_max: float = 60.0


@dataclass(frozen=True)
class StaffConfig:
    pin_hash: str | None = None


@dataclass(frozen=True)
class DeviceConfig:
    device_id: str
    site: str
    location: str
    survey: SurveyConfig = field(default_factory=SurveyConfig)
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    hours: HoursConfig = field(default_factory=HoursConfig)
    staff: StaffConfig = field(default_factory=StaffConfig)
    source: Path | None = None
    version: int = 0  # raised by central on each config push


class _Reader:
    """Pulls typed values out of a parsed TOML table, naming ``section.key`` in every error."""

    def __init__(self, path: str, base: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.base = base
        self.data = data

    def section(self, name: str, known: set[str], required: bool = False) -> dict[str, Any]:
        table = self.data.get(name)
        if table is None:
            if required:
                raise ConfigError(self.path, f"[{name}]", "section is missing")
            return {}
        if not isinstance(table, dict):
            raise ConfigError(self.path, f"[{name}]", "must be a table")
        for key in table:
            if key not in known:
                raise ConfigError(self.path, f"{name}.{key}", f"unknown key; known: {', '.join(sorted(known))}")
        return table

    def get(self, table: dict[str, Any], section: str, key: str, kind: type | tuple[type, ...],
            default: Any = None, required: bool = False) -> Any:
        if key not in table:
            if required:
                raise ConfigError(self.path, f"{section}.{key}", "is required")
            return default
        value = table[key]
        if kind in (float, (int, float)) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and kind is not bool:
            raise ConfigError(self.path, f"{section}.{key}", f"must be {_kind_name(kind)}, not a boolean")
        if not isinstance(value, kind):
            raise ConfigError(self.path, f"{section}.{key}",
                              f"must be {_kind_name(kind)}, got {type(value).__name__} {value!r}")
        return value

    def ident(self, table: dict[str, Any], section: str, key: str) -> str:
        value = self.get(table, section, key, str, required=True)
        if not is_id(value):
            raise ConfigError(self.path, f"{section}.{key}",
                              f"{value!r} must be 1-64 letters, digits, '.', '_' or '-' (no '/', '+', '#')")
        return str(value)

    def positive(self, table: dict[str, Any], section: str, key: str, default: float) -> float:
        value = self.get(table, section, key, float, default)
        if value <= 0:
            raise ConfigError(self.path, f"{section}.{key}", f"must be greater than 0, got {value}")
        return float(value)

    def file(self, table: dict[str, Any], section: str, key: str, must_exist: bool = True) -> Path | None:
        value = self.get(table, section, key, str)
        if not value:
            return None
        path = Path(value)
        if not path.is_absolute():
            path = self.base / path
        if must_exist and not path.is_file():
            raise ConfigError(self.path, f"{section}.{key}", f"file {str(path)!r} does not exist")
        return path

    def strings(self, table: dict[str, Any], section: str, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.get(table, section, key, list, list(default))
        if not all(isinstance(v, str) and v for v in value):
            raise ConfigError(self.path, f"{section}.{key}", "must be a list of non-empty strings")
        return tuple(value)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
             list: "a list", dict: "a table"}
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)


def parse_config(data: dict[str, Any], path: str = "<config>", base: Path | None = None) -> DeviceConfig:
    """Build a :class:`DeviceConfig` from parsed TOML, raising :class:`ConfigError` on the first problem."""
    r = _Reader(path, base or Path.cwd(), data)
    for top in data:
        if top not in {"device", "survey", "broker", "storage", "sync", "hours", "staff", "meta"}:
            raise ConfigError(path, f"[{top}]", "unknown section")

    dev = r.section("device", {"id", "site", "location"}, required=True)
    device_id = r.ident(dev, "device", "id")
    site = r.ident(dev, "device", "site")
    location = r.ident(dev, "device", "location")

    survey = _survey(r)

    b = r.section("broker", {"url", "urls", "username", "password_file", "ca_file", "cert_file", "key_file"})
    urls = _broker_urls(r, b)
    broker = BrokerConfig(
        url=urls[0],
        urls=urls,
        username=r.get(b, "broker", "username", str) or None,
        password_file=r.file(b, "broker", "password_file"),
        ca_file=r.file(b, "broker", "ca_file"),
        cert_file=r.file(b, "broker", "cert_file"),
        key_file=r.file(b, "broker", "key_file"),
    )
    if (broker.cert_file is None) != (broker.key_file is None):
        raise ConfigError(path, "broker.cert_file", "cert_file and key_file go together")

    st = r.section("storage", {"path", "retention_days", "min_free_mb"})
    store_path = Path(r.get(st, "storage", "path", str, "device.db"))
    if not store_path.is_absolute():
        store_path = r.base / store_path
    storage = StorageConfig(
        path=store_path,
        retention_days=r.positive(st, "storage", "retention_days", StorageConfig.retention_days),
        min_free_mb=r.get(st, "storage", "min_free_mb", float, StorageConfig.min_free_mb),
    )

    sync = _sync(r)
    hours = _hours(r)
    staff = _staff(r)
    meta = r.section("meta", {"version"})
    version = r.get(meta, "meta", "version", int, 0)

    return DeviceConfig(device_id=device_id, site=site, location=location, survey=survey, broker=broker,
                        storage=storage, sync=sync, hours=hours, staff=staff,
                        source=Path(path) if path != "<config>" else None, version=version)


def _broker_urls(r: _Reader, b: dict[str, Any]) -> tuple[str, ...]:
    """``url = "…"`` (one broker) or ``urls = ["…", "…"]`` (failover, tried in order); not both."""
    if "url" in b and "urls" in b:
        raise ConfigError(r.path, "broker.urls", "give either url or urls, not both")
    if "urls" in b:
        key, urls = "broker.urls", r.strings(b, "broker", "urls", ())
        if not urls:
            raise ConfigError(r.path, key, "must name at least one broker URL")
    else:
        key, urls = "broker.url", (r.get(b, "broker", "url", str, BrokerConfig().url),)
    for url in urls:
        if not re.match(r"^mqtts?://[^/]+", url):
            raise ConfigError(r.path, key, f"{url!r} must start with mqtt:// or mqtts:// and name a host")
    if len(set(urls)) != len(urls):
        raise ConfigError(r.path, key, "names the same URL twice")
    return tuple(urls)


# --- the tables central may push: one parser each, for the file and for a push alike ---------------------------
def _survey(r: _Reader) -> SurveyConfig:
    s = r.section("survey", {"scale", "question", "languages", "reasons_negative", "reasons_positive",
                             "response_interval", "idle_reset", "ask_contact"})
    scale = r.get(s, "survey", "scale", str, "smiley4")
    if scale not in SCALES:
        raise ConfigError(r.path, "survey.scale", f"{scale!r} is not one of {', '.join(SCALES)}")
    question = r.get(s, "survey", "question", (str, dict), SurveyConfig().question)
    if isinstance(question, str):
        question = {"en": question}
    if not all(isinstance(k, str) and isinstance(v, str) and v for k, v in question.items()):
        raise ConfigError(r.path, "survey.question", "must be a string or a table of language = text")
    defaults = SurveyConfig()
    interval = r.get(s, "survey", "response_interval", float, defaults.response_interval)
    if interval < 0:
        raise ConfigError(r.path, "survey.response_interval", f"must be 0 or more seconds, got {interval}")
    return SurveyConfig(
        scale=scale,
        question=dict(question),
        languages=r.strings(s, "survey", "languages", defaults.languages),
        reasons_negative=r.strings(s, "survey", "reasons_negative", defaults.reasons_negative),
        reasons_positive=r.strings(s, "survey", "reasons_positive", defaults.reasons_positive),
        response_interval=interval,
        idle_reset=r.positive(s, "survey", "idle_reset", defaults.idle_reset),
        ask_contact=r.get(s, "survey", "ask_contact", bool, defaults.ask_contact),
    )


def _sync(r: _Reader) -> SyncConfig:
    sy = r.section("sync", set(SyncConfig.__dataclass_fields__))
    sd = SyncConfig()
    batch_size = r.get(sy, "sync", "batch_size", int, sd.batch_size)
    if not 1 <= batch_size <= 10_000:
        raise ConfigError(r.path, "sync.batch_size", f"must be 1..10000, got {batch_size}")
    max_inflight = r.get(sy, "sync", "max_inflight", int, sd.max_inflight)
    if not 1 <= max_inflight <= 1000:
        raise ConfigError(r.path, "sync.max_inflight", f"must be 1..1000, got {max_inflight}")
    return SyncConfig(
        batch_size=batch_size,
        batch_delay=r.get(sy, "sync", "batch_delay", float, sd.batch_delay),
        ack_timeout=r.positive(sy, "sync", "ack_timeout", sd.ack_timeout),
        heartbeat=r.positive(sy, "sync", "heartbeat", sd.heartbeat),
        max_rate=r.positive(sy, "sync", "max_rate", sd.max_rate),
        max_inflight=max_inflight,
        reconnect_min=r.positive(sy, "sync", "reconnect_min", sd.reconnect_min),
        reconnect_max=r.positive(sy, "sync", "reconnect_max", sd.reconnect_max),
    )


def _hours(r: _Reader) -> HoursConfig:
    h = r.section("hours", {"timezone", *WEEKDAYS})
    try:
        return parse_hours(h)
    except HoursError as e:
        raise ConfigError(r.path, f"hours.{e.key}", e.problem) from None


def _staff(r: _Reader) -> StaffConfig:
    t = r.section("staff", {"pin_hash"})
    pin_hash = r.get(t, "staff", "pin_hash", str)
    if pin_hash:
        try:
            check_pin_hash(pin_hash)
        except PinError as e:
            raise ConfigError(r.path, "staff.pin_hash", str(e).removeprefix("staff.pin_hash ")) from None
    return StaffConfig(pin_hash=pin_hash or None)


# Central may change these tables through a config push (only ``pin_hash`` of ``staff``); never device, broker
# or storage.
CENTRAL_SECTIONS = ("survey", "hours", "sync", "staff")
CENTRAL_KEYS: dict[str, frozenset[str]] = {"staff": frozenset({"pin_hash"})}
_PARSERS: dict[str, Callable[[_Reader], object]] = {"survey": _survey, "hours": _hours, "sync": _sync,
                                                    "staff": _staff}


def check_push(tables: dict[str, Any], source: str = "config push") -> None:
    """Check the tables of a config push by the rules the device applies to its file; :class:`ConfigError`
    naming ``section.key`` on the first problem.

    Central calls it before it publishes (``smileloop fleet push``), the sync agent before it merges a push
    over the staff file. Only :data:`CENTRAL_SECTIONS` may be pushed; each is checked on its own, as it
    stands in the push (the keys not named keep the staff file's values, which were checked with the file).

    >>> check_push({"survey": {"scale": "stars"}})
    Traceback (most recent call last):
    device.errors.ConfigError: config push: survey.scale: 'stars' is not one of smiley4, smiley5, nps, csat5
    """
    if not isinstance(tables, dict):
        raise ConfigError(source, "(config)", "must be a table of tables")
    r = _Reader(source, Path.cwd(), tables)
    for name, table in tables.items():
        if name not in CENTRAL_SECTIONS:
            raise ConfigError(source, f"[{name}]", f"central may only set {', '.join(CENTRAL_SECTIONS)}")
        if not isinstance(table, dict):
            raise ConfigError(source, f"[{name}]", "must be a table")
        for key in table:
            if name in CENTRAL_KEYS and key not in CENTRAL_KEYS[name]:
                raise ConfigError(source, f"{name}.{key}",
                                  f"central may only set {', '.join(sorted(CENTRAL_KEYS[name]))} of [{name}]")
        _PARSERS[name](r)


def load_config(path: str | Path) -> DeviceConfig:
    """Read and validate a device config file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(p), "(file)", "does not exist") from None
    except OSError as e:
        raise ConfigError(str(p), "(file)", f"cannot be read: {e.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(str(p), "(file)", "is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(p), "(syntax)", str(e)) from None
    config = parse_config(data, str(p), p.resolve().parent)
    overlay = central_overlay_path(p)
    if not overlay.exists():
        return config
    try:
        merged = merge_central(data, tomllib.loads(overlay.read_text(encoding="utf-8")), str(overlay))
        return parse_config(merged, str(p), p.resolve().parent)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ConfigError) as e:
        # Written only after validation, so this means the staff file changed under it: the staff file wins.
        log.warning("%s: ignored, the staff config stays in force: %s", overlay, e)
        return config


def central_overlay_path(path: str | Path) -> Path:
    """``device.toml`` → ``device.central.toml``: central's pushed config lives beside the staff file, which is
    never rewritten."""
    p = Path(path)
    return p.with_name(f"{p.stem}.central.toml")


def merge_central(data: dict[str, Any], overlay: dict[str, Any], source: str = "<config push>") -> dict[str, Any]:
    """The staff config with central's keys laid over it, key by key (keys central does not name stay)."""
    merged = {name: dict(table) if isinstance(table, dict) else table for name, table in data.items()}
    for name, table in overlay.items():
        if name == "meta":
            if not isinstance(table, dict) or set(table) - {"version"}:
                raise ConfigError(source, "[meta]", "may only hold 'version'")
        elif name not in CENTRAL_SECTIONS:
            raise ConfigError(source, f"[{name}]", f"central may only set {', '.join(CENTRAL_SECTIONS)}")
        if not isinstance(table, dict):
            raise ConfigError(source, f"[{name}]", "must be a table")
        extra = set(table) - CENTRAL_KEYS[name] if name in CENTRAL_KEYS else set()
        if extra:
            raise ConfigError(source, f"{name}.{sorted(extra)[0]}",
                              f"central may only set {', '.join(sorted(CENTRAL_KEYS[name]))} of [{name}]")
        base = merged.get(name)
        merged[name] = {**(base if isinstance(base, dict) else {}), **table}
    return merged
