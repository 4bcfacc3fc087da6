"""Ratings from a NATS cluster: one JetStream durable pull consumer, shared by every central worker.

NATS serves the devices' MQTT (3.1.1) and turns each topic into a subject (``/`` → ``.``): a device's
``smileloop/v1/<site>/<device>/ratings`` is ``smileloop.v1.<site>.<device>.ratings``. The stream
:data:`STREAM` captures those subjects (work-queue retention, file storage, ``replicas`` copies: a node can die
without losing a message the stream accepted) and every worker pulls from the one durable consumer
:data:`DURABLE`, so a message goes to one worker at a time — no MQTT shared subscription needed (NATS MQTT has
none). A worker acknowledges a message explicitly and only after the store committed it (``Intake`` calls
:meth:`NatsSource.ack`); one that dies first leaves it unacknowledged, and JetStream gives it to a worker again
after ``ack_wait``. The rating ids make that harmless: central stores each id once and opens each alert once.
A worker that stops with messages in hand gives them back (``nak``), so another takes them at once.

The NATS client (nats-py, asyncio) runs on its own thread; messages cross to the service's loop through a list
and a pipe (:attr:`wake_fd`) the loop waits on beside the MQTT socket. At most ``max_held`` messages are held
unacknowledged by one worker, so a slow worker never starves the others. The client reconnects by itself and
moves between the servers it is given; a fetch that fails (a leader election after a node died) is retried
after a short jittered pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import ssl
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from central.intake import Inbound

log = logging.getLogger("smileloop.central.nats")

STREAM = "SMILELOOP_RATINGS"
SUBJECT = "smileloop.v1.*.*.ratings"  # topics.ALL_RATINGS as a NATS subject
DURABLE = "smileloop-central"
MAX_AGE_S = 7 * 86400  # as long as the MQTT session central keeps on Mosquitto


def topic_of(subject: str) -> str:
    """The MQTT topic of a subject NATS made from one (``.`` → ``/``; NATS refuses MQTT topics with a ``.``).

    >>> topic_of("smileloop.v1.store-1.kiosk-1.ratings")
    'smileloop/v1/store-1/kiosk-1/ratings'
    """
    return subject.replace(".", "/")


class NatsSource:
    """``NatsSource(["nats://n1:4222", …], user=…, password=…)``; the service calls ``start``, ``take``, ``ack``,
    ``nack`` and ``close`` (central/sources.py)."""

    name = "nats"
    subscriptions: list[str] = []  # ratings do not come over central's MQTT connection

    def __init__(self, servers: Sequence[str], *, user: str | None = None, password: str | None = None,
                 ca_file: Path | None = None, cert_file: Path | None = None, key_file: Path | None = None,
                 stream: str = STREAM, durable: str = DURABLE, replicas: int = 3, ack_wait: float = 30.0,
                 max_held: int = 1000, batch: int = 200, client_name: str = "smileloop-central") -> None:
        if not servers:
            raise ValueError("a NATS source needs at least one server")
        self.servers = list(servers)
        self.user, self.password = user, password
        self.tls_files = (ca_file, cert_file, key_file)
        self.stream, self.durable, self.replicas, self.ack_wait = stream, durable, replicas, ack_wait
        self.max_held, self.batch, self.client_name = max_held, batch, client_name
        self._lock = threading.Lock()
        self._received: list[Inbound] = []
        self._held = 0
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.wake_fd: int | None = self._wake_r
        self._loop = asyncio.new_event_loop()
        self._room: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.bound = threading.Event()  # set once the consumer answered: the worker takes ratings
        self.fetched = 0
        self.acked = 0
        self.errors = 0

    # --- the service's side (its loop thread) ---------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),),
                                        name="central-nats", daemon=True)
        self._thread.start()

    def take(self) -> list[Inbound]:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 4096)
        with self._lock:
            out, self._received = self._received, []
        return out

    def ack(self, m: Inbound) -> None:
        self._settle(m, "ack")

    def nack(self, m: Inbound) -> None:
        """Give it back: JetStream redelivers it now, to whichever worker asks first."""
        self._settle(m, "nak")

    def close(self, timeout: float = 5.0) -> None:
        if self._thread is not None and self._thread.is_alive() and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout)
        if not self._loop.is_running():
            self._loop.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _settle(self, m: Inbound, how: str) -> None:
        msg = m.handle
        if msg is None or self._loop.is_closed():
            return
        with self._lock:
            self._held -= 1
        with contextlib.suppress(RuntimeError):  # the loop is gone: JetStream redelivers after ack_wait
            self._loop.call_soon_threadsafe(self._send, msg, how)

    # --- the NATS thread ----------------------------------------------------------------------
    def _send(self, msg: Any, how: str) -> None:
        self._loop.create_task(self._settle_async(msg, how))
        if self._room is not None:
            self._room.set()

    async def _settle_async(self, msg: Any, how: str) -> None:
        try:
            await (msg.ack() if how == "ack" else msg.nak())
            self.acked += how == "ack"
        except Exception as e:  # lost with a connection: JetStream redelivers it after ack_wait, harmlessly
            log.warning("could not %s a message on %s (%s); it comes again", how, msg.subject, e)

    async def _main(self) -> None:
        import nats

        self._room, self._stopping = asyncio.Event(), asyncio.Event()
        nc = None
        pause = 0.2
        while not self._stopping.is_set():
            try:
                if nc is None:
                    nc = await nats.connect(
                        self.servers, user=self.user, password=self.password, name=self.client_name,
                        tls=self._tls(), allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                        connect_timeout=2, error_cb=self._on_error, disconnected_cb=self._on_disconnected,
                        reconnected_cb=self._on_reconnected)
                    log.info("nats: connected to %s", nc.connected_url.netloc if nc.connected_url else "?")
                await self._consume(nc)
            except Exception as e:
                self.errors += 1
                self.bound.clear()
                log.warning("nats: %s: %s; trying again in %.1fs", type(e).__name__, str(e)[:200], pause)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), pause * random.uniform(0.5, 1.5))
                pause = min(pause * 2, 2.0)
                if nc is not None and nc.is_closed:
                    nc = None
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.flush(timeout=2)  # the last acks go out
            with contextlib.suppress(Exception):
                await nc.close()

    async def _consume(self, nc: Any) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        js = nc.jetstream(timeout=5)
        await self._ensure_stream(js)
        config = ConsumerConfig(durable_name=self.durable, ack_policy=AckPolicy.EXPLICIT,
                                deliver_policy=DeliverPolicy.ALL, ack_wait=self.ack_wait, max_deliver=-1,
                                max_ack_pending=20_000, filter_subject=SUBJECT)
        psub = await js.pull_subscribe(SUBJECT, durable=self.durable, stream=self.stream, config=config)
        try:
            await self._pull(psub)
        finally:
            with contextlib.suppress(Exception):
                await psub.unsubscribe()

    async def _pull(self, psub: Any) -> None:
        import nats.errors

        self.bound.set()
        assert self._room is not None and self._stopping is not None
        while not self._stopping.is_set():
            with self._lock:
                room = self.max_held - self._held
            if room <= 0:
                self._room.clear()
                waiters = [asyncio.ensure_future(e.wait()) for e in (self._room, self._stopping)]
                _, rest = await asyncio.wait(waiters, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                for w in rest:
                    w.cancel()
                continue
            try:
                msgs = await psub.fetch(min(room, self.batch), timeout=1.0)
            except (nats.errors.TimeoutError, TimeoutError):  # nothing waiting (or no answer yet): ask again
                continue
            self._deliver(msgs)

    async def _ensure_stream(self, js: Any) -> None:
        """The stream, made if missing (every worker tries; the same config twice is no conflict)."""
        from nats.js.api import RetentionPolicy, StorageType
        from nats.js.errors import NotFoundError

        try:
            await js.stream_info(self.stream)
            return
        except NotFoundError:
            pass
        await js.add_stream(name=self.stream, subjects=[SUBJECT], retention=RetentionPolicy.WORK_QUEUE,
                            storage=StorageType.FILE, num_replicas=self.replicas, max_age=MAX_AGE_S)
        log.info("nats: stream %s made (%d replicas)", self.stream, self.replicas)

    def _deliver(self, msgs: list[Any]) -> None:
        if not msgs:
            return
        batch = [Inbound(topic_of(m.subject), bytes(m.data), source=self, handle=m) for m in msgs]
        with self._lock:
            self._received.extend(batch)
            self._held += len(batch)
        self.fetched += len(batch)
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"x")

    def _tls(self) -> ssl.SSLContext | None:
        ca, cert, key = self.tls_files
        if not any(s.startswith("tls://") for s in self.servers) and ca is None:
            return None
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
        if cert is not None and key is not None:
            context.load_cert_chain(str(cert), str(key))
        return context

    async def _on_error(self, e: Exception) -> None:
        log.warning("nats: %s: %s", type(e).__name__, str(e)[:200])

    async def _on_disconnected(self) -> None:
        log.warning("nats: disconnected; reconnecting")

    async def _on_reconnected(self) -> None:
        log.info("nats: reconnected")
