"""An in-process MQTT broker (amqtt) for the demo on machines without Mosquitto.

amqtt speaks MQTT 3.1.1 only, so clients pointed at it use ``?protocol=3.1.1``: no v5 reason codes
and no session expiry — fine for a demo, not for production (docs/PROTOCOL.md says what 3.1.1 costs).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from smileloop_core.errors import BrokerProcessError
from smileloop_core.mosquitto import PortReservation, reserve_port


class EmbeddedBroker:
    def __init__(self, port: int | None = None) -> None:
        self._reservation: PortReservation | None = None
        if not port:
            self._reservation = reserve_port()  # no other process is handed the port before the broker binds it
            port = self._reservation.port
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._broker: Any = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="embedded-broker", daemon=True)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}?protocol=3.1.1"

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        try:
            from amqtt.broker import Broker
        except ImportError as e:
            raise BrokerProcessError(
                "no broker: install mosquitto (apt-get install mosquitto) or pip install 'smileloop[embedded]'"
            ) from e
        logging.getLogger("amqtt").setLevel(logging.ERROR)
        config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
                  "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}}
        self._thread.start()

        async def boot() -> None:
            self._broker = Broker(config)
            await self._broker.start()

        asyncio.run_coroutine_threadsafe(boot(), self._loop).result(timeout)
        return self

    def stop(self) -> None:
        if self._broker is not None:
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if self._reservation is not None:
            self._reservation.release()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
