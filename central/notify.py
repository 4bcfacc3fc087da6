"""Alert delivery to people: apprise URLs (e-mail, Slack, Teams, ntfy, webhooks…) per contact.

Every delivery is a row in ``deliveries`` before anything is sent, and every attempt a row in
``delivery_attempts``: a crash or a dead mail server loses nothing, and a failed delivery is retried with a
growing delay until ``max_attempts``. Contacts in quiet hours get theirs when quiet ends; digest contacts get
one message per ``digest`` minutes. The MQTT alerts topic is published by the service itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from central.errors import DeliveryFailed
from central.org import Contact, Org
from central.records import Alert, Delivery
from central.store import CentralStore, parse_time
from smileloop_core.redact import redact_url, scrub

log = logging.getLogger("smileloop.alerts")

Send = Callable[[str, str, str], None]  # (apprise URL, title, body); raises on failure


def apprise_send(url: str, title: str, body: str) -> None:
    """Send through apprise; its own log lines become the failure reason."""
    import apprise

    with apprise.LogCapture(level=logging.WARNING) as captured:
        notifier = apprise.Apprise()
        if not notifier.add(url):
            raise DeliveryFailed("apprise does not understand this URL")
        ok = notifier.notify(title=title, body=body)
    if not ok:
        why = " ".join(str(captured.getvalue()).split())[-300:] if captured else ""
        raise DeliveryFailed(scrub(why, url) or "apprise reported a failed delivery")


def check_url(url: str) -> None:
    """Refuse a URL apprise cannot use at start, not at 3 a.m."""
    import apprise

    if not apprise.Apprise().add(url):
        raise ValueError(f"apprise does not understand the notification URL {redact_url(url)!r}")


def _local(ts: str | None, tz: str | None) -> str:
    """A stored UTC time as the site's clock shows it ("Tue 11:00"), or as stored without a zone."""
    when = parse_time(ts)
    if when is None:
        return "-"
    if tz is None:
        return str(ts)
    return when.astimezone(ZoneInfo(tz)).strftime("%a %d %b %H:%M")


def _facts(kind: str, d: dict[str, Any], tz: str | None) -> list[str]:
    """The lines that say what happened, per rule."""
    if kind == "negative_share":
        return [f"{d['negatives']} of {d['responses']} responses unhappy in {d['window'] // 60} min"]
    if kind == "negative_count":
        return [f"{d['negatives']} unhappy in {d['window'] // 60} min"]
    if kind == "low_index":
        return [f"Satisfaction index {d['index']} (alert below {d['below']:g}) over {d['responses']} responses"]
    if kind == "silence":
        return [f"Last tap: {_local(d['last_tap'], tz)} ({d['device_state']})",
                f"Usually a tap every {max(1, d['usual_gap_seconds'] // 60)} min in opening hours; "
                f"silent for {d['silent_open_seconds'] // 60} open min",
                "Check the kiosk: frozen screen, blocked, switched off?"]
    if kind == "device_offline":
        return [f"Offline since {_local(d['since'], tz)} ({d['open_seconds_down'] // 60} open min)",
                f"Ratings waiting on the device: {d.get('backlog') if d.get('backlog') is not None else 'unknown'}"]
    if kind == "backlog":
        return [f"{d['backlog']} ratings not delivered; oldest {d['oldest_age'] // 60} min old"]
    if kind == "backlog_arrived":
        top = ", ".join(f"{r} ({n})" for r, n in d.get("top_reasons") or [])
        return [f"{d['ratings']} ratings made from {_local(d['oldest'], tz)} to {_local(d['newest'], tz)} "
                "arrived late (the device was offline)", f"{d['negatives']} of them unhappy"
                + (f"; most often: {top}" if top else ""),
                "One summary instead of a page per rating; each rating is in the store"]
    if kind == "disk_low":
        return [f"{d['disk_free_mb']:.0f} MB free (alert below {d['min_free_mb']:g} MB)"]
    if kind == "burst":
        return [f"{d['taps']} taps within {d['within']:g} s ({_local(d['from'], tz)})", "Someone pressing for fun?"]
    if kind == "same_value":
        return [f"The value {d['value']}, {d['run']} times in a row within {d['seconds']:g} s",
                "Staff pressing for themselves, or a stuck button?"]
    if kind == "recurring_reason":
        where = ", ".join(f"{loc} ({n})" for loc, n in d["locations"].items())
        return [f"'{d['reason']}' {d['count']} times on {d['day']}: a process to fix, not one unhappy visitor",
                f"Where: {where}"]
    if kind == "happy_streak":
        return [f"{d['run']} positive ratings in a row"]
    if kind == "promoter_burst":
        return [f"{d['positives']} delighted visitors in {d['window'] // 60} min"]
    lines = []
    if "value" in d:
        lines.append(f"Rating: {d['value']} on {d.get('scale')}")
    for key, label in (("reason", "Reason"), ("comment", "Comment")):
        if d.get(key):
            lines.append(f"{label}: {d[key]}")
    if d.get("rating_ts"):
        lines.append(f"At: {_local(d['rating_ts'], tz)}")
    return lines


def alert_text(alert: Alert, purpose: str = "alert", tz: str | None = None) -> tuple[str, str]:
    """Title and body as a site manager reads them on a phone; times in the site's zone ``tz`` when given."""
    d = alert.get("detail") or {}
    prefix = ""
    if purpose.startswith("reopened"):
        prefix = "Back again: "
    elif purpose.startswith("escalation"):
        prefix = "Not yet handled: "
    lines = [f"{alert.get('site')} / {alert.get('location') or alert.get('device_id') or '-'}"]
    try:
        lines += _facts(str(alert.get("kind")), d, tz)
    except (KeyError, TypeError, ValueError):  # a detail from an older central: show what there is
        lines += [f"{k}: {v}" for k, v in d.items()]
    if d.get("top_reasons"):
        lines.append("Top reasons today: " + ", ".join(f"{r} ({n})" for r, n in d["top_reasons"]))
    elif d.get("reasons"):
        lines.append("Reasons: " + ", ".join(f"{r} ({n})" for r, n in d["reasons"]))
    if (alert.get("hits") or 1) > 1:
        lines.append(f"Seen {alert['hits']} times")
    short = str(alert["id"])[:8]
    if alert.get("severity") != "kudos":
        lines.append(f"Seen it: smileloop alerts ack {short} --by <you>")
    else:
        lines.append("Well done, team!")
    return prefix + str(alert["title"]), "\n".join(lines)


def _quiet_end(contact: Contact, when: datetime, tz: str) -> datetime:
    """The first minute after ``when`` outside the contact's quiet hours."""
    assert contact.quiet is not None
    local = when.astimezone(ZoneInfo(tz))
    end = local.replace(hour=contact.quiet[1].hour, minute=contact.quiet[1].minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end


class Dispatcher:
    """Queues deliveries for alerts and sends the due ones. Safe to run in several workers: a delivery is
    claimed with a conditional update before it is sent."""

    def __init__(self, store: CentralStore, org: Callable[[], Org], *, send: Send = apprise_send,
                 extra: Sequence[Contact] = (), max_attempts: int = 6, retry_base: float = 30.0,
                 retry_cap: float = 3600.0) -> None:
        self.store = store
        self.org = org
        self.send = send
        self.extra = tuple(extra)
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.retry_cap = retry_cap

    # --- queueing -------------------------------------------------------------------------------
    def queue(self, alert: Alert, now: datetime, *, purpose: str = "alert", level: int = 0) -> int:
        """Rows for everyone to tell at ``level`` of the alert's chain; the number queued (0 if already)."""
        org = self.org()
        step = org.level(alert["site"], alert.get("location"), level)
        contacts = list(step.contacts) if step else []
        if level == 0:
            contacts += self.extra
        tz = org.hours(alert["site"]).timezone
        queued = 0
        for contact in contacts:
            if alert.get("severity") == "kudos" and not contact.kudos:
                continue
            for url in contact.urls:
                state, next_at = "pending", now
                if contact.digest:
                    state, next_at = "digest", now + timedelta(minutes=contact.digest)
                elif contact.in_quiet(now, tz):
                    next_at = _quiet_end(contact, now, tz)
                queued += self._insert(alert["id"], purpose, contact.name, url, state, next_at, now)
        if not contacts and purpose == "alert":
            log.warning("nobody to tell about alert %s at %s (no contacts up the tree)", alert["id"], alert["site"])
            self.store.mark_notified(alert["id"], now)  # the log line is all there is to deliver
        title, body = alert_text(alert, purpose, tz)
        log.warning("ALERT %s — %s", title, body.replace("\n", "; "))
        return queued

    def queue_followup(self, alert: Alert, contact: str, text: str, now: datetime) -> int:
        """The visitor's follow-up, when they left contact details with consent and the site has a template."""
        template = self.org().site(alert["site"]).visitor_followup
        if not template:
            return 0
        url = template.replace("{contact}", quote(contact, safe="@+"))
        return self._insert(alert["id"], "followup", "visitor", url, "pending", now, now, body=text)

    def _insert(self, alert_id: str, purpose: str, contact: str, url: str, state: str, next_at: datetime,
                now: datetime, body: str | None = None) -> int:
        return int(self.store.queue_delivery(alert_id, purpose, contact, url, state, next_at, now, body))

    # --- sending --------------------------------------------------------------------------------
    def run_due(self, now: datetime, limit: int = 50) -> int:
        """Send what is due (retries included) and collapse due digests; how many were sent."""
        self._collect_digests(now)
        sent = 0
        for delivery in self.store.due_deliveries(now, limit):
            if not self.store.claim_delivery(delivery.id):
                continue  # another worker has it
            sent += self._attempt(delivery, now)
        return sent

    def _message(self, d: Delivery) -> tuple[str, str]:
        if d.purpose == "followup":
            return "Thank you for your feedback", str(d.payload.get("body", ""))
        if d.purpose == "digest":
            return str(d.payload["title"]), str(d.payload["body"])
        alert = self.store.alert(d.alert_id)
        return alert_text(alert, d.purpose, self.org().hours(alert["site"]).timezone)

    def _attempt(self, d: Delivery, now: datetime) -> int:
        attempts = d.attempts + 1
        try:
            self.send(d.url, *self._message(d))
        except Exception as e:
            error = str(e) or type(e).__name__
            final = attempts >= self.max_attempts
            delay = min(self.retry_cap, self.retry_base * 2 ** (attempts - 1))
            self.store.delivery_failed(d.id, attempts, now, error,
                                       retry_at=None if final else now + timedelta(seconds=delay))
            log.error("delivery %s of alert %s to %s failed (attempt %d/%d): %s", d.purpose, d.alert_id,
                      d.contact, attempts, self.max_attempts, error)
            return 0
        with self.store.transaction():
            self.store.delivery_sent(d.id, attempts, now)
            if d.purpose == "alert" or d.purpose.startswith("reopened"):
                self.store.mark_notified(d.alert_id, now)
            elif d.purpose == "digest":
                for alert_id in d.payload.get("alerts", []):
                    self.store.mark_notified(alert_id, now)
        return 1

    def _collect_digests(self, now: datetime) -> None:
        """Digest rows of a URL whose oldest is due become one 'digest' delivery."""
        for url in self.store.due_digest_urls(now):
            with self.store.transaction():
                rows = self.store.digest_rows(url)
                if not rows:
                    continue
                lines, ids = [], []
                for r in rows:
                    try:
                        alert = self.store.alert(r.alert_id)
                    except LookupError:
                        continue
                    ids.append(alert["id"])
                    tz = self.org().hours(alert["site"]).timezone
                    lines.append(f"- {_local(alert['opened_at'], tz)} {alert['title']} ({alert['state']}, "
                                 f"{str(alert['id'])[:8]})")
                title = f"smileloop digest: {len(lines)} alert{'s' if len(lines) != 1 else ''}"
                self.store.add_digest(rows[0].contact, url, {"title": title, "body": "\n".join(lines), "alerts": ids},
                                      now)


def deliveries_of(store: CentralStore, alert_id: str) -> list[dict[str, Any]]:
    """Each delivery of an alert (URLs shortened to their scheme and host) with its attempts."""
    return [{"purpose": d["purpose"], "contact": d["contact"], "state": d["state"], "attempts": d["attempts"],
             "next_at": d["next_at"], "sent_at": d["sent_at"], "url": _redact(d["url"]), "tries": d["tries"]}
            for d in store.deliveries(alert_id)]


def _redact(url: str) -> str:
    return redact_url(url)

