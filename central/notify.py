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
from central.store import CentralStore
from central.texts import Texts
from smileloop_core.redact import redact_url, scrub

log = logging.getLogger("smileloop.alerts")

Send = Callable[[str, str, str], None]  # (apprise URL, title, body); raises on failure
FOLLOWUP = "followup:"  # a follow-up delivery's url: followup:<rating id> (the address is looked up when sending)


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


def alert_text(alert: Alert, purpose: str = "alert", tz: str | None = None, lang: str = "en") -> tuple[str, str]:
    """Title and body as a site manager reads them on a phone, in ``lang``; times in the site's zone ``tz`` when
    given. The texts are in :mod:`central.texts`."""
    return Texts(lang, tz).alert(alert, purpose)


def texts_for(org: Org, site: str) -> Texts:
    """Central's texts in the site's language (``language`` in the org tree, English by default), its zone."""
    s = org.site(site)
    return Texts(s.language, s.hours.timezone, org.console_url)


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
        texts = texts_for(org, alert["site"])
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
        title, body = texts.alert(alert, purpose)
        log.warning("ALERT %s — %s", title, body.replace("\n", "; "))
        return queued

    def queue_followup(self, alert: Alert, contact: str, text: str, now: datetime) -> int:
        """The visitor's follow-up, when they left contact details with consent and the site has a template.

        The row names the rating (``followup:<rating id>``), never the address: that is looked up in the rating
        when sending (:meth:`_followup_url`), so it goes when retention clears it, and no log or listing shows it."""
        if not self.org().site(alert["site"]).visitor_followup:
            return 0
        rating_id = self.store.rating_with_contact(alert["id"], contact)
        if rating_id is None:
            return 0
        return self._insert(alert["id"], "followup", "visitor", f"{FOLLOWUP}{rating_id}", "pending", now, now,
                            body=text)

    def _followup_url(self, d: Delivery) -> tuple[str, str]:
        """(apprise URL, the address in it) of a follow-up, from the rating's contact and the site's template."""
        alert = self.store.alert(d.alert_id)
        template = self.org().site(alert["site"]).visitor_followup
        contact = self.store.rating_contact(d.url.removeprefix(FOLLOWUP)) if d.url.startswith(FOLLOWUP) else None
        if not template or not contact:
            raise DeliveryFailed("the visitor's contact details are no longer kept (retention or erasure)")
        return template.replace("{contact}", quote(contact, safe="@+")), contact

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
        if d.purpose == "digest":
            return str(d.payload["title"]), str(d.payload["body"])
        alert = self.store.alert(d.alert_id)
        texts = texts_for(self.org(), alert["site"])
        if d.purpose == "followup":
            return texts.followup_title(), str(d.payload.get("body", ""))
        return texts.alert(alert, d.purpose)

    def _attempt(self, d: Delivery, now: datetime) -> int:
        attempts = d.attempts + 1
        url, secret = d.url, ""
        try:
            if d.purpose == "followup":
                url, secret = self._followup_url(d)
            self.send(url, *self._message(d))
        except Exception as e:
            error = scrub(str(e) or type(e).__name__, url)
            if secret:  # the address never reaches the delivery record or the log
                error = error.replace(secret, "***").replace(quote(secret, safe="@+"), "***")
            final = attempts >= self.max_attempts or (not secret and d.purpose == "followup")
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
                lines, ids, first = [], [], None
                org = self.org()
                for r in rows:
                    try:
                        alert = self.store.alert(r.alert_id)
                    except LookupError:
                        continue
                    ids.append(alert["id"])
                    texts = texts_for(org, alert["site"])
                    first = first or texts  # the title speaks the language of the first alert's site
                    lines.append(texts.digest_line(alert))
                title = (first or Texts()).digest_title(len(lines))
                self.store.add_digest(rows[0].contact, url, {"title": title, "body": "\n".join(lines), "alerts": ids},
                                      now)


def deliveries_of(store: CentralStore, alert_id: str) -> list[dict[str, Any]]:
    """Each delivery of an alert (URLs shortened to their scheme and host) with its attempts."""
    return [{"purpose": d["purpose"], "contact": d["contact"], "state": d["state"], "attempts": d["attempts"],
             "next_at": d["next_at"], "sent_at": d["sent_at"], "url": _redact(d["url"]), "tries": d["tries"]}
            for d in store.deliveries(alert_id)]


def _redact(url: str) -> str:
    return redact_url(url)

