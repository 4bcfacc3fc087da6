"""Central's time-driven work: what no message triggers — device health, silence, SLA escalation, outcomes
("you said, we did", retained), alert messages that could not go out, the retention purge.

A mixin of :class:`central.service.CentralService`, run by its loop every ``tick_interval`` (on the MQTT
thread, so it may publish); apart so the service module holds the flow of messages and this the flow of time.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from central import lifecycle, rules, sla
from central.announce import Announcer
from central.notify import Dispatcher
from central.org import Org
from central.records import Alert, Opened
from central.retention import RetentionTask
from central.rulebook import RuleBook
from central.store import CentralStore
from smileloop_core import topics
from smileloop_core.clock import Clock
from smileloop_core.connection import Connection

log = logging.getLogger("smileloop.central")
T = TypeVar("T")


class TimeDriven:
    """The periodic tick; the service provides what it reads."""

    store: CentralStore
    clock: Clock
    conn: Connection
    announcer: Announcer
    dispatcher: Dispatcher
    retention: RetentionTask
    silence_interval: float
    _last_silence: float
    _usual: dict[tuple[str, str], tuple[datetime, float | None]]
    _deliver_now: threading.Event

    if TYPE_CHECKING:
        def org(self) -> Org: ...

        def book(self) -> RuleBook: ...

    def tick(self, now: datetime | None = None, *, silence: bool | None = None) -> list[Opened]:
        """Device health, silence (every ``silence_interval``), SLA escalation, outcomes, retention; what it opened.

        Each item (a candidate, an alert, a location's outcomes) is handled on its own: one that fails is logged
        and skipped, so a bad row can never stop the tick for everything after it.
        """
        now = now or self.clock.now()
        org, book = self.org(), self.book()
        if silence is None:
            silence = self.clock.monotonic() - self._last_silence >= self.silence_interval
        if silence:
            self._last_silence = self.clock.monotonic()
        candidates = _guarded("the periodic rules", lambda: rules.periodic(
            self.store, org, book, now, usual_cache=self._usual) if silence else rules.status_rules(
            self.store, org, book, now)) or []
        opened: list[Opened] = []
        for c in candidates:
            for o in _guarded(f"opening {c.kind} at {c.key}",
                              partial(rules.raise_candidates, self.store, book, [c], now)) or []:
                opened.append(o)
                _guarded(f"announcing alert {o.alert['id']}", partial(self.announcer.announce, o, now))
        for alert in self.store.alerts(state="live", limit=10_000):
            if alert["kind"] in rules.HEALTH_KINDS and not alert.get("parent_id"):
                _guarded(f"recovery of alert {alert['id']}", partial(self._recover, alert, book, now))
        for alert, waited in _guarded("the SLA clocks", partial(sla.overdue, self.store, org, book, now)) or []:
            _guarded(f"escalating alert {alert['id']}", partial(self._escalate, alert, waited, now))
        _guarded("publishing outcomes", lambda: self.publish_outcomes(now))
        _guarded("publishing pending alert messages", lambda: self.flush_mqtt(now))
        _guarded("the retention purge", lambda: self.retention.run(now))
        return opened

    def _recover(self, alert: Alert, book: RuleBook, now: datetime) -> None:
        why = rules.recovered(self.store, book, alert, now)
        done = lifecycle.auto_resolve(self.store, alert["id"], why, now) if why else None
        if done is not None:
            self._publish_alert(done, "recovered")

    def _escalate(self, alert: Alert, waited: float, now: datetime) -> None:
        up = sla.escalate(self.store, alert, now, waited)
        if up is not None:
            self.dispatcher.queue(up, now, purpose=f"escalation-{up['level']}", level=up["level"])
            self._deliver_now.set()
            self._publish_alert(up, "escalated")

    def publish_outcomes(self, now: datetime) -> int:
        """Publish (retained) the latest "you said, we did" items of each location with new ones; a location
        whose items cannot be published is logged and skipped, the others still go."""
        published = 0
        for site, location in self.store.unpublished_outcome_locations():
            def one(site: str = site, location: str = location) -> bool:
                body = {"v": 1, "items": self.store.outcomes(site, location)}
                if self.conn.publish(topics.outcomes(site, location), json.dumps(body, ensure_ascii=False), qos=1,
                                     retain=True) is None:
                    return False
                self.store.mark_outcomes_published(site, location, now)
                return True
            published += bool(_guarded(f"outcomes of {site}/{location}", one))
        return published

    def _publish_alert(self, alert: Alert, event: str) -> None:
        self.announcer.publish(alert, event, self.clock.now())

    def flush_mqtt(self, now: datetime | None = None) -> int:
        """Publish alert messages that could not go out when they were raised (central was disconnected)."""
        return self.announcer.flush(now or self.clock.now())


def _guarded(what: str, fn: Callable[[], T]) -> T | None:
    """``fn()``, or None after logging what failed: periodic work goes on past one bad item."""
    try:
        return fn()
    except Exception:
        log.exception("periodic tick: %s failed; skipped until the next tick", what)
        return None

