"""Alert delivery: the log, and any apprise URL (e-mail, Slack, Teams, ntfy, webhooks…).

Deliveries run on their own thread so a slow mail server never delays ingest or receipts.
The MQTT alerts topic is published by the service itself, on its own connection.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

log = logging.getLogger("smileloop.alerts")


class Notifier(Protocol):
    name: str

    def send(self, alert: dict[str, Any]) -> None:
        """Deliver one alert; raise on failure."""


def alert_text(alert: dict[str, Any]) -> tuple[str, str]:
    """Title and body as a site manager reads them on a phone."""
    d = alert.get("detail") or {}
    lines = [f"{alert.get('site')} / {alert.get('location') or '-'}"]
    if "value" in d:
        lines.append(f"Rating: {d['value']} on {d.get('scale')}")
    if d.get("reason"):
        lines.append(f"Reason: {d['reason']}")
    if d.get("comment"):
        lines.append(f"Comment: {d['comment']}")
    if d.get("rating_ts"):
        lines.append(f"At: {d['rating_ts']}")
    lines.append(f"Alert {alert['id']}")
    return str(alert["title"]), "\n".join(lines)


class LogNotifier:
    name = "log"

    def send(self, alert: dict[str, Any]) -> None:
        title, body = alert_text(alert)
        log.warning("ALERT %s — %s", title, body.replace("\n", "; "))


class AppriseNotifier:
    """Any number of apprise URLs; a URL apprise does not understand is an error at start, not at 3 a.m."""

    name = "apprise"

    def __init__(self, urls: Sequence[str]) -> None:
        import apprise

        self._apprise = apprise.Apprise()
        for url in urls:
            if not self._apprise.add(url):
                raise ValueError(f"apprise does not understand the notification URL {url!r}")
        self.urls = list(urls)

    def send(self, alert: dict[str, Any]) -> None:
        title, body = alert_text(alert)
        if not self._apprise.notify(title=title, body=body):
            raise RuntimeError(f"apprise could not deliver alert {alert['id']} to every URL")


class DeliveryWorker:
    """A queue of alerts and one thread delivering each to every notifier, with a few retries."""

    def __init__(self, notifiers: Sequence[Notifier], on_done: Callable[[dict[str, Any]], None],
                 retries: int = 3, retry_delay: float = 1.0) -> None:
        self.notifiers = list(notifiers)
        self.on_done = on_done
        self.retries = retries
        self.retry_delay = retry_delay
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="alert-delivery", daemon=True)
        self._stop = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def submit(self, alert: dict[str, Any]) -> None:
        self._queue.put(alert)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            if alert is None:
                return
            ok = True
            for notifier in self.notifiers:
                ok = self._deliver(notifier, alert) and ok
            if ok:
                try:
                    self.on_done(alert)
                except Exception:
                    log.exception("could not record delivery of alert %s", alert["id"])

    def _deliver(self, notifier: Notifier, alert: dict[str, Any]) -> bool:
        for attempt in range(1, self.retries + 1):
            try:
                notifier.send(alert)
                return True
            except Exception as e:
                log.error("delivery of alert %s via %s failed (attempt %d/%d): %s", alert["id"], notifier.name,
                          attempt, self.retries, e)
                if self._stop.wait(self.retry_delay * attempt):
                    return False
        return False
