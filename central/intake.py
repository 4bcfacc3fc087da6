"""Group commit with fault isolation: how central turns the broker's messages into stored rows.

Messages wait in ``pending`` until the loop flushes them — after each network step, so under load a flush
holds everything the broker sent meanwhile, and in quiet times a message waits no longer than one step. A
flush commits up to ``max_messages`` in one transaction, then runs the after-commit work (receipts, alert
messages) and acknowledges each message to the broker. Nothing is acknowledged before its commit.

When a commit fails, whose fault is it? Parsing never fails here (:func:`central.ingest.check_message` turns
any payload into rows or a rejection reason), so a failure is the store's — or one message the store cannot
take. An error that says so (a lock wait that timed out, a lost connection) or a store that cannot start a write
transaction means an outage:

- it cannot (locked, server down): everything stays pending and unacknowledged, and the flush is tried again
  after a backoff (capped at ``retry_max``, so ingest resumes within that of the store's return). The broker
  holds back further messages once its in-flight window is full; that is the right pressure.
- it can: the batch is committed one message at a time, so the good ones go through now; a message that fails
  on its own ``max_tries`` times becomes a dead-letter row with the reason and is acknowledged, so a few such
  messages can never keep the in-flight window full. No receipt is sent for it: the device keeps the ratings
  and offers them again later, so nothing is lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("smileloop.central")


@dataclass
class Inbound:
    """One message from the broker (MQTT) or the stream (JetStream), not yet acknowledged."""

    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 1
    tries: int = 0
    conn: int = 0  # which connection it came on: only that one can acknowledge it
    receipt: dict[str, Any] | None = None  # what central answered the device, once stored
    source: Any = None  # the source it came from (central/sources.py): only that one can acknowledge it
    handle: Any = None  # that source's own handle on it (a JetStream message)


# commit(messages) stores them in one transaction and returns the after-commit work; raises if not stored.
Commit = Callable[[list[Inbound]], Callable[[], None]]


class Intake:
    """``Intake(commit, ack, dead_letter, writable)``; the owner calls :meth:`add` per message and
    :meth:`flush` from its loop."""

    def __init__(self, commit: Commit, ack: Callable[[Inbound], None], dead_letter: Callable[[Inbound, str], None],
                 writable: Callable[[], bool], *, outage: Callable[[BaseException], bool] = lambda e: False,
                 max_messages: int = 200, max_tries: int = 3,
                 retry_min: float = 0.05, retry_max: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.commit = commit
        self.ack = ack
        self.dead_letter = dead_letter
        self.writable = writable
        self.outage = outage
        self.max_messages = max_messages
        self.max_tries = max_tries
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.monotonic = monotonic
        self.pending: list[Inbound] = []
        self.retry_at = 0.0
        self.outage_since: float | None = None
        self._failures = 0
        self.stored = 0
        self.dead = 0

    def add(self, message: Inbound) -> None:
        self.pending.append(message)

    @property
    def full(self) -> bool:
        return len(self.pending) >= self.max_messages

    def flush(self) -> int:
        """Commit what is pending (in batches of ``max_messages``); the number of messages finished."""
        done = 0
        while self.pending and self.monotonic() >= self.retry_at:
            batch = self.pending[:self.max_messages]
            try:
                after = self.commit(batch)
            except Exception as e:
                finished = self._isolate(batch, e)
                done += finished
                if not finished:
                    return done
                continue
            self._finish(batch, after)
            done += len(batch)
        return done

    def _finish(self, batch: list[Inbound], after: Callable[[], None]) -> None:
        if self.outage_since is not None:
            log.warning("store is back after %.1fs; ingest resumes", self.monotonic() - self.outage_since)
            self.outage_since = None
        self._failures = 0
        try:
            after()
        except Exception:  # stored already: a failed receipt or alert message is retried by its own path
            log.exception("after-commit work for %d message(s) failed", len(batch))
        for m in batch:
            self.ack(m)
        done = {id(m) for m in batch}
        self.pending = [m for m in self.pending if id(m) not in done]
        self.stored += len(batch)

    def _isolate(self, batch: list[Inbound], error: Exception) -> int:
        """A failed batch: wait for a store that cannot write; else find the message(s) it cannot take."""
        if self.outage(error) or not self._can_write():
            self._back_off(error)
            return 0
        finished = 0
        for m in list(batch):
            try:
                after = self.commit([m])
            except Exception as e:
                if self.outage(e):
                    self._back_off(e)
                    return finished
                m.tries += 1
                if m.tries < self.max_tries:
                    continue
                if not self._can_write():
                    self._back_off(e)
                    return finished
                why = f"dead letter after {m.tries} tries: {type(e).__name__}: {str(e)[:300]}"
                log.error("message on %s could not be stored (%s); acknowledged without a receipt", m.topic, why)
                try:
                    self.dead_letter(m, why)
                except Exception:
                    log.exception("could not record the dead letter for %s", m.topic)
                    self._back_off(e)
                    return finished
                self.ack(m)
                self.pending.remove(m)
                self.dead += 1
                finished += 1
                continue
            self._finish([m], after)
            finished += 1
        if not finished:
            self._back_off(error)
        return finished

    def _can_write(self) -> bool:
        try:
            return self.writable()
        except Exception:
            return False

    def _back_off(self, error: Exception) -> None:
        self._failures += 1
        delay = min(self.retry_max, self.retry_min * 2 ** (self._failures - 1))
        self.retry_at = self.monotonic() + delay
        if self.outage_since is None:
            self.outage_since = self.monotonic()
            log.error("store cannot take %d pending message(s) (%s: %s); holding them, retrying every ≤ %.1fs",
                      len(self.pending), type(error).__name__, str(error)[:300], self.retry_max)
