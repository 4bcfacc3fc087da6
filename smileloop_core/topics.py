"""MQTT topics (docs/PROTOCOL.md, "Topics"). One place builds and parses them."""

from __future__ import annotations

PREFIX = "smileloop/v1"


def ratings(site: str, device: str) -> str:
    return f"{PREFIX}/{site}/{device}/ratings"


def status(site: str, device: str) -> str:
    return f"{PREFIX}/{site}/{device}/status"


def config(site: str, device: str) -> str:
    return f"{PREFIX}/{site}/{device}/config"


def erase(site: str, device: str) -> str:
    """Retained erase requests for one device: ratings whose visitor details it must forget."""
    return f"{PREFIX}/{site}/{device}/erase"


def ack(site: str, device: str) -> str:
    return f"{PREFIX}/{site}/{device}/ack"


def alerts(site: str) -> str:
    return f"{PREFIX}/{site}/alerts"


def outcomes(site: str, location: str) -> str:
    """Retained "you said, we did" items for a location's kiosks."""
    return f"{PREFIX}/{site}/outcomes/{location}"


ALL_RATINGS = f"{PREFIX}/+/+/ratings"
ALL_STATUS = f"{PREFIX}/+/+/status"


def parse_device_topic(topic: str) -> tuple[str, str, str] | None:
    """``smileloop/v1/<site>/<device>/<kind>`` → (site, device, kind), or None for anything else."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != PREFIX:
        return None
    return parts[2], parts[3], parts[4]
