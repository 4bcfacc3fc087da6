"""One MQTT connection with our own reconnect loop, driven from the owner's thread.

The owner calls ``ensure()`` then ``step()`` in its loop; paho's callbacks run inside ``step()`` on
that same thread. A fresh paho client is made per connection attempt, so no stale in-memory session
(paho's queued publishes) survives a disconnect: the owner's outbox decides what goes again.
User callbacks are wrapped so one exception never kills the loop.

Failover: given several brokers, a connection that cannot connect, or loses its connection, moves to the next
one (after the jittered backoff when the attempt failed) and comes back round to the first; it stays where it
connected. One broker means exactly the old behaviour.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt

from smileloop_core.mqtt import Backoff, BrokerSettings, connect_kwargs, is_failure, make_client, reason_text

log = logging.getLogger("smileloop.mqtt")

OnConnect = Callable[[mqtt.Client], None]
OnMessage = Callable[[mqtt.Client, mqtt.MQTTMessage], None]
OnPublish = Callable[[int, Any], None]


class ConnectFailed(ConnectionError):
    """TCP/TLS failed, or the broker refused the CONNECT (bad credentials, not authorised)."""


class Connection:
    def __init__(self, settings: BrokerSettings | Sequence[BrokerSettings], client_id: str, *, backoff: Backoff,
                 on_connect: OnConnect, on_message: OnMessage, on_publish: OnPublish | None = None,
                 will: tuple[str, bytes] | None = None, clean_start: bool = True,
                 session_expiry: int | None = None, manual_ack: bool = False, name: str = "mqtt") -> None:
        self.candidates: tuple[BrokerSettings, ...] = (
            (settings,) if isinstance(settings, BrokerSettings) else tuple(settings))
        if not self.candidates:
            raise ValueError("a connection needs at least one broker")
        self.current = 0  # index into candidates of the broker in use (or tried next)
        self.client_id = client_id
        self.backoff = backoff
        self._on_connect_cb = on_connect
        self._on_message_cb = on_message
        self._on_publish_cb = on_publish
        self.will = will
        self.clean_start = clean_start
        self.session_expiry = session_expiry
        self.manual_ack = manual_ack
        self.name = name
        self.client: mqtt.Client | None = None
        self.connected = False
        self.ever_connected = False
        self.connects = 0
        self.last_error: str | None = None
        self._connack_error: str | None = None

    @property
    def settings(self) -> BrokerSettings:
        """The broker in use, or the one the next attempt goes to."""
        return self.candidates[self.current]

    def ensure(self, stop: threading.Event, deadline: float | None = None) -> bool:
        """Connected now → True. Otherwise one attempt; on failure wait a jittered backoff, return False.

        A connection that was lost first moves on to the next broker (with several); so does a failed attempt.
        """
        if self.client is not None and self.connected:
            return True
        if self.client is not None:
            self.close()
            self._next_broker()
        try:
            self._connect()
            self.backoff.reset()
            return True
        except (OSError, ConnectFailed) as e:
            self.close()  # a TCP failure leaves the half-made client behind
            delay = self.backoff.next_delay()
            if deadline is not None:
                delay = max(0.0, min(delay, deadline - time.monotonic()))
            self.last_error = str(e) or type(e).__name__
            failed = self.settings.redacted()
            self._next_broker()
            log.warning("%s: broker %s unreachable (%s); trying %s in %.1fs", self.name, failed,
                        self.last_error, self.settings.redacted(), delay)
            stop.wait(delay)
            return False

    def _next_broker(self) -> None:
        self.current = (self.current + 1) % len(self.candidates)

    def _connect(self) -> None:
        client = make_client(self.settings, self.client_id, manual_ack=self.manual_ack, will=self.will)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self.client, self.connected, self._connack_error = client, False, None
        client.connect(**connect_kwargs(self.settings, clean_start=self.clean_start,
                                        session_expiry=self.session_expiry))
        deadline = time.monotonic() + self.settings.connect_timeout
        while not self.connected and time.monotonic() < deadline:
            rc = client.loop(timeout=0.05)
            if self._connack_error or rc != mqtt.MQTT_ERR_SUCCESS:
                self._connack_error = self._connack_error or mqtt.error_string(rc)
                break
        if not self.connected:
            error = self._connack_error or "no CONNACK in time"
            self.close()
            raise ConnectFailed(f"connection refused: {error}")

    def step(self, timeout: float = 0.02, wake_fd: int | None = None) -> bool:
        """Run paho's network loop once; False (and disconnected) if the connection is gone.

        With ``wake_fd`` the wait also ends when that descriptor becomes readable (the owner's doorbell).
        """
        if self.client is None:
            return False
        sock = self.client.socket()
        if wake_fd is not None and timeout > 0 and sock is not None and not self.client.want_write():
            select.select([sock.fileno(), wake_fd], [], [], timeout)
            timeout = 0.0
        rc = self.client.loop(timeout=timeout)
        if rc != mqtt.MQTT_ERR_SUCCESS or not self.connected:
            if self.connected:
                self.last_error = f"connection lost: {mqtt.error_string(rc)}"
                log.warning("%s: %s", self.name, self.last_error)
            self.connected = False
            return False
        return True

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> int | None:
        """Publish; the message id, or None when not connected (nothing is queued for later)."""
        if self.client is None or not self.connected:
            return None
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.connected = False
            return None
        return int(info.mid)

    def close(self, goodbye: tuple[str, bytes] | None = None) -> None:
        client, self.client = self.client, None
        was_connected, self.connected = self.connected, False
        if client is None:
            return
        try:
            if goodbye and was_connected:
                client.publish(goodbye[0], goodbye[1], qos=1, retain=True)
                client.loop(timeout=0.05)
            client.disconnect()
            client.loop(timeout=0.05)
        except Exception:  # the socket may already be gone; nothing left to save
            pass

    # --- paho callbacks (run inside step(), on the owner's thread) -----------------------------
    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason_code: Any,
                    properties: object) -> None:
        if is_failure(reason_code):
            self._connack_error = reason_text(reason_code)
            return
        self.connected = True
        self.ever_connected = True
        self.connects += 1
        self.last_error = None
        log.info("%s: connected to %s", self.name, self.settings.redacted())
        self._guard("on_connect", self._on_connect_cb, client)

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, reason_code: Any,
                       properties: object) -> None:
        if client is self.client:
            self.connected = False

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self._guard(f"message on {msg.topic}", self._on_message_cb, client, msg)

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, reason_code: Any,
                    properties: object) -> None:
        if self._on_publish_cb is not None:
            self._guard("on_publish", self._on_publish_cb, mid, reason_code)

    def _guard(self, what: str, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("%s: handler for %s failed", self.name, what)
