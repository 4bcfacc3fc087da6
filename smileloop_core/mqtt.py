"""Broker connection settings from a URL, a paho client built from them, and a jittered backoff.

Both the sync agent and central own their reconnect loops (paho's built-in backoff has no jitter,
and its session lives in memory only), so this module only builds clients; it never loops.
"""

from __future__ import annotations

import random
import ssl
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from smileloop_core.errors import BrokerUrlError

_PROTOCOLS = {"5": mqtt.MQTTv5, "v5": mqtt.MQTTv5, "311": mqtt.MQTTv311, "3.1.1": mqtt.MQTTv311,
              "v311": mqtt.MQTTv311}


@dataclass(frozen=True)
class BrokerSettings:
    host: str
    port: int
    tls: bool = False
    protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv5
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive: int = 30
    connect_timeout: float = 5.0

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> BrokerSettings:
        """``mqtt[s]://[user[:password]@]host[:port][?protocol=5|3.1.1]``.

        A password in the URL is for local testing; devices read theirs from a 0600 file.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise BrokerUrlError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
        if not parts.hostname:
            raise BrokerUrlError(f"broker URL {url!r}: no host")
        try:
            port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        except ValueError:
            raise BrokerUrlError(f"broker URL {url!r}: the port is not a number 1-65535") from None
        query = parse_qs(parts.query)
        proto_name = query.get("protocol", ["5"])[0].lower()
        if proto_name not in _PROTOCOLS:
            raise BrokerUrlError(f"broker URL {url!r}: protocol must be 5 or 3.1.1, not {proto_name!r}")
        settings = cls(
            host=parts.hostname, port=port, tls=parts.scheme == "mqtts", protocol=_PROTOCOLS[proto_name],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **clean) if clean else settings

    def with_password_file(self, path: Path | None) -> BrokerSettings:
        if path is None:
            return self
        return replace(self, password=path.read_text().strip())

    @property
    def v5(self) -> bool:
        return self.protocol == mqtt.MQTTv5

    def redacted(self) -> str:
        """The URL to show in logs: never the password."""
        user = f"{self.username}@" if self.username else ""
        proto = "" if self.v5 else "?protocol=3.1.1"
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}{proto}"


def make_client(settings: BrokerSettings, client_id: str, *, manual_ack: bool = False,
                will: tuple[str, bytes] | None = None) -> mqtt.Client:
    """A fresh paho client (VERSION2 callbacks); one per connection attempt, so nothing stale survives."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=settings.protocol,
                         manual_ack=manual_ack, reconnect_on_failure=False)
    client.connect_timeout = settings.connect_timeout
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        ctx = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if settings.cert_file and settings.key_file:
            ctx.load_cert_chain(str(settings.cert_file), str(settings.key_file))
        client.tls_set_context(ctx)
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    return client


def connect_kwargs(settings: BrokerSettings, *, clean_start: bool = True,
                   session_expiry: int | None = None) -> dict[str, Any]:
    """Arguments for ``client.connect`` that differ between MQTT v5 and 3.1.1."""
    kwargs: dict[str, Any] = {"host": settings.host, "port": settings.port, "keepalive": settings.keepalive}
    if settings.v5:
        kwargs["clean_start"] = clean_start
        if session_expiry is not None:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves it untyped
            props.SessionExpiryInterval = session_expiry
            kwargs["properties"] = props
    return kwargs


class Backoff:
    """Exponential backoff with full jitter (delay drawn from 0..min(cap, base·2^n)).

    Full jitter keeps a thousand kiosks that lost the same broker from reconnecting in lock-step.
    """

    def __init__(self, base: float = 0.5, cap: float = 60.0, rng: random.Random | None = None) -> None:
        self.base, self.cap = base, cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * (2 ** self.attempt))
        self.attempt = min(self.attempt + 1, 30)
        return self._rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.attempt = 0


def reason_text(reason_code: Any) -> str:
    """'Not authorized (135)' from a paho ReasonCode or an int."""
    value = getattr(reason_code, "value", reason_code)
    return f"{reason_code} ({value})"


def is_failure(reason_code: Any) -> bool:
    if hasattr(reason_code, "is_failure"):
        return bool(reason_code.is_failure)
    return bool(reason_code)
