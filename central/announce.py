"""Alerts out: the people to tell, and the alert's message on the site's alerts topic.

The message is recorded as a delivery in the same transaction as the alert (so none is lost while central is
disconnected) and published only after the commit; each attempt is recorded, and listeners (the demo, tests,
the console later) see every alert published.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from central.notify import Dispatcher
from central.records import Alert, AlertMessage, Opened
from central.store import CentralStore
from smileloop_core import topics, wire
from smileloop_core.connection import Connection

log = logging.getLogger("smileloop.central")


class Announcer:
    """``Announcer(store, conn, dispatcher, wake=event.set)``: ``wake`` tells the delivery thread work is queued."""

    def __init__(self, store: CentralStore, conn: Connection, dispatcher: Dispatcher, *,
                 wake: Callable[[], None]) -> None:
        self.store = store
        self.conn = conn
        self.dispatcher = dispatcher
        self.wake = wake
        self.on_alert: list[Callable[[dict[str, Any]], None]] = []

    def announce(self, opened: Opened, now: datetime) -> None:
        """Queue the deliveries of an alert just opened and publish it (own transaction: rules and the tick)."""
        with self.store.transaction():
            message = self.queue(opened, now)
        self.send([message] if message is not None else [], now)

    def queue(self, opened: Opened, now: datetime) -> AlertMessage | None:
        """In the caller's transaction: the people to tell, and the alert's message on the site's alerts topic,
        recorded as a pending delivery; None if there is nothing new to say (a repeat, a redelivery)."""
        return self.queue_many([opened], now)[0] if opened.action not in ("repeated", "duplicate") else None

    def queue_many(self, opened: list[Opened], now: datetime) -> list[AlertMessage | None]:
        """:meth:`queue` for a whole batch of alerts, their messages recorded with one multi-row insert."""
        fresh = [o for o in opened if o.action not in ("repeated", "duplicate")]
        for o in fresh:
            if o.notify:
                purpose = "alert" if o.action == "opened" else f"reopened-{o.alert.get('reopened', 1)}"
                self.dispatcher.queue(o.alert, now, purpose=purpose)
                self.wake()
        # A grouped alert's message is informational (its first alert's is the one that matters): published,
        # not recorded as a delivery, so a burst of negatives costs one row each, not four.
        recorded = iter(self.store.add_alert_messages([_message(o.alert, o.action) for o in fresh
                                                       if o.action != "grouped"], now))
        return [AlertMessage(None, *_message(o.alert, o.action)[2:]) if o.action == "grouped" else next(recorded)
                for o in fresh]

    def record(self, alert: Alert, event: str, now: datetime) -> AlertMessage | None:
        """The alert's message for the site's alerts topic, recorded as a pending delivery (None if it was)."""
        return self.store.add_alert_message(*_message(alert, event), now)

    def publish(self, alert: Alert, event: str, now: datetime) -> None:
        """Publish on the site's alerts topic, recorded as a delivery; if not connected now, the row stays
        pending and :meth:`flush` publishes it after the reconnect."""
        message = self.record(alert, event, now)
        self.send([message] if message is not None else [], now)

    def send(self, messages: list[AlertMessage], now: datetime) -> int:
        """Publish recorded alert messages (after their commit), record each attempt, tell the listeners."""
        if not messages:
            return 0
        results = [(m.row_id, self.conn.publish(m.topic, m.payload, qos=1) is not None) for m in messages]
        self.store.record_alert_sends([(rid, ok) for rid, ok in results if rid is not None], now)
        for m in messages:
            for listener in self.on_alert:
                try:
                    listener(json.loads(m.payload))
                except Exception:
                    log.exception("alert listener failed")
        return sum(ok for _, ok in results)

    def flush(self, now: datetime) -> int:
        """Publish alert messages that could not go out when they were raised (central was disconnected)."""
        if not self.conn.connected:
            return 0
        sent = 0
        for message in self.store.pending_alert_messages(limit=500):
            if not self.send([message], now):
                break
            sent += 1
        return sent


def _message(alert: Alert, event: str) -> tuple[str, str, str, str]:
    """(alert id, purpose, topic, payload) of an alert's message on the site's alerts topic."""
    step = alert.get("level") if event == "escalated" else alert.get("reopened", 0)
    return alert["id"], f"mqtt-{event}-{step}", topics.alerts(alert["site"]), wire.encode({"event": event, **alert})
