"""Where central's ratings messages come from: a *source* hands them over and is told, per message, once it is
done with them — acknowledged after the store committed it, or given back.

Whatever the source, what happens to a message once received is one code path: :class:`central.intake.Intake`
(group commit, outages, dead letters), then the receipt over MQTT. Two sources:

- :class:`MqttSource`: the ratings subscription of central's own MQTT connection (Mosquitto, or a shared
  subscription between workers); an acknowledgement is paho's ``manual_ack`` on the connection that received it.
- :class:`central.nats_source.NatsSource`: one JetStream durable pull consumer that every worker shares (a NATS
  cluster); an acknowledgement is JetStream's explicit ack.

The loop (``CentralService.run``) waits on the MQTT socket and the source's ``wake_fd`` together, so a message
from another thread is taken at once, not at the next network step.
"""

from __future__ import annotations

from typing import Protocol

import paho.mqtt.client as mqtt

from central.intake import Inbound
from smileloop_core.connection import Connection


class RatingsSource(Protocol):
    """What the service needs of a source of ratings messages."""

    name: str
    wake_fd: int | None  # readable when messages wait (a source fed from another thread); None for MQTT
    subscriptions: list[str]  # MQTT topic filters central's own connection subscribes to for this source

    def start(self) -> None: ...

    def take(self) -> list[Inbound]: ...

    def ack(self, m: Inbound) -> None: ...

    def nack(self, m: Inbound) -> None: ...

    def close(self) -> None: ...


class MqttSource:
    """Ratings on central's MQTT connection: ``put`` from its message callback, ``take`` from the loop."""

    name = "mqtt"
    wake_fd: int | None = None

    def __init__(self, conn: Connection, subscriptions: list[str]) -> None:
        self.conn = conn
        self.subscriptions = subscriptions
        self._received: list[Inbound] = []

    def start(self) -> None:
        pass

    def put(self, m: Inbound) -> None:
        m.source = self
        self._received.append(m)

    def take(self) -> list[Inbound]:
        out, self._received = self._received, []
        return out

    def ack(self, m: Inbound) -> None:
        """A message received on an earlier connection cannot be acknowledged (the broker sends it again)."""
        client: mqtt.Client | None = self.conn.client
        if client is not None and m.conn == self.conn.connects and m.mid:
            client.ack(m.mid, m.qos)

    def nack(self, m: Inbound) -> None:
        """Nothing to say to the broker: an unacknowledged message comes again with the next connection."""

    def close(self) -> None:
        self._received.clear()
