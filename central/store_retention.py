"""The retention half of central's store: the SQL of the purge :mod:`central.retention` schedules.

One transaction removes, by age, what the organisation's periods no longer allow: contacts and consent records
(also once the visitor's follow-up is done), comments (the original, the masked copy, and the masked copies in
alert details, follow-up audit notes and sent alert messages), rejected payloads, finished deliveries with their
attempts, and audit rows. Ratings stay, anonymous. Running it twice removes nothing more.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from smileloop_core.clock import utc_iso

if TYPE_CHECKING:
    from central.retention import Retention
    from central.store import CentralStore

FINISHED = "('sent', 'failed', 'digested')"  # delivery states that need nothing more


@dataclass(frozen=True)
class Purged:
    """What one purge removed, as counts."""

    contacts: int = 0
    comments: int = 0
    rejected: int = 0
    deliveries: int = 0
    audit: int = 0

    @property
    def total(self) -> int:
        return sum(asdict(self).values())


def purge(store: CentralStore, policy: Retention, now: datetime) -> Purged:
    """Remove what ``policy`` no longer allows to keep at ``now``, in one transaction."""
    db = store.db

    def before(days: int) -> str:
        return utc_iso(now - timedelta(days=days))

    with store.transaction():
        contacts = db.execute("UPDATE ratings SET contact = NULL, consent = NULL WHERE contact IS NOT NULL "
                              "AND received_at < ?", (before(policy.contact_days),))
        # A follow-up delivery's url is 'followup:<rating id>' (central/notify.py): done with it, done with the address.
        contacts += db.execute(
            "UPDATE ratings SET contact = NULL, consent = NULL WHERE contact IS NOT NULL AND id IN (SELECT "
            "substr(url, 10) FROM deliveries WHERE purpose = 'followup' AND state IN ('sent', 'failed') "
            "AND COALESCE(sent_at, next_at) < ?)", (before(policy.contact_after_followup_days),))
        comments = db.execute("UPDATE ratings SET comment = NULL, comment_shown = NULL WHERE comment IS NOT NULL "
                              "AND received_at < ?", (before(policy.comment_days),))
        _forget_comments(store, before(policy.comment_days))
        rejected = db.execute("DELETE FROM rejected WHERE received_at < ?", (before(policy.rejected_days),))
        old = before(policy.delivery_days)
        db.execute(f"DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE "
                   f"created_at < ? AND state IN {FINISHED})", (old,))
        deliveries = db.execute(f"DELETE FROM deliveries WHERE created_at < ? AND state IN {FINISHED}", (old,))
        audit = db.execute("DELETE FROM alert_audit WHERE at < ?", (before(policy.audit_days),))
        audit += db.execute("DELETE FROM org_audit WHERE at < ?", (before(policy.audit_days),))
    return Purged(contacts=int(contacts), comments=int(comments), rejected=int(rejected),
                  deliveries=int(deliveries), audit=int(audit))


def _forget_comments(store: CentralStore, cutoff: str) -> None:
    """Comments copied (masked) into alert details, follow-up audit notes and sent alert messages go with them."""
    db = store.db
    for row in db.query("SELECT id, detail FROM alerts WHERE opened_at < ? AND detail LIKE ?",
                        (cutoff, '%"comment": "%')):
        detail = json.loads(row["detail"])
        detail["comment"] = None
        db.execute("UPDATE alerts SET detail = ? WHERE id = ?", (json.dumps(detail), row["id"]))
    for row in db.query("SELECT id, note FROM alert_audit WHERE at < ? AND note LIKE ?", (cutoff, '%"comment": "%')):
        note = json.loads(row["note"])
        note["comment"] = None
        db.execute("UPDATE alert_audit SET note = ? WHERE id = ?", (json.dumps(note), row["id"]))
    db.execute("UPDATE deliveries SET payload = NULL WHERE contact = 'mqtt' AND state = 'sent' AND created_at < ? "
               "AND payload LIKE ?", (cutoff, '%"comment": "%'))
