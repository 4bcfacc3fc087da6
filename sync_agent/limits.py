"""What the broker allows, read from the MQTT v5 CONNACK, and batches cut to fit it.

A broker announces ``Maximum Packet Size`` (a larger PUBLISH gets the client disconnected) and
``Receive Maximum`` (how many QoS 1 publishes may wait for PUBACK at once). MQTT 3.1.1 brokers say
neither, so the agent also halves its batch when a connection dies with batches in flight and grows
it back as PUBACKs arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# PUBLISH fixed header (≤ 5) + topic length (2) + packet id (2) + properties length (≤ 4), beside the topic.
PUBLISH_OVERHEAD = 16


@dataclass(frozen=True)
class BrokerLimits:
    max_packet: int | None = None  # bytes; None: the broker set no limit (or speaks 3.1.1)
    receive_max: int | None = None  # None: 65535, the v5 default

    @classmethod
    def from_connack(cls, properties: Any) -> BrokerLimits:
        if properties is None:
            return cls()
        return cls(max_packet=getattr(properties, "MaximumPacketSize", None),
                   receive_max=getattr(properties, "ReceiveMaximum", None))

    def max_payload(self, topic: str) -> int | None:
        """The largest payload that fits one PUBLISH on ``topic``."""
        if self.max_packet is None:
            return None
        return self.max_packet - PUBLISH_OVERHEAD - len(topic.encode())

    def inflight(self, wanted: int) -> int:
        """Batches in flight: never more than the broker receives, one slot kept for the status heartbeat."""
        if self.receive_max is None:
            return wanted
        return max(1, min(wanted, self.receive_max - 1))


class AdaptiveBatch:
    """Batch size: halved when a connection dies with batches in flight, grown back by a quarter per PUBACK,
    never above what last fitted the broker's maximum packet size (forgotten at each new connection)."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.size = ceiling
        self.fitted: int | None = None

    def set_ceiling(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.size = min(self.size, ceiling)

    def shrink(self) -> None:
        self.size = max(1, min(self.size // 2, self.ceiling))

    def fit(self, size: int) -> None:
        """``size`` ratings were all that fitted one packet: stay there."""
        self.fitted = self.size = max(1, min(size, self.ceiling))

    def new_connection(self) -> None:
        self.fitted = None

    def grow(self) -> None:
        self.size = min(self.fitted or self.ceiling, self.ceiling, self.size + max(1, self.size // 4))
