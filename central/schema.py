"""Central's schema as numbered migrations, the same on SQLite and PostgreSQL.

Each migration runs once, in order, in one transaction, and is recorded in ``_migrations``. Never edit a
migration that has shipped; add the next one. ``{serial}`` becomes the dialect's auto-increment key;
``{clustered}`` after a table makes SQLite keep its rows in primary-key order (``WITHOUT ROWID``: a range of the
key is read in one sweep, not row by row), and is nothing on PostgreSQL.
"""

from __future__ import annotations

from central.db import Database

MIGRATIONS: list[tuple[str, list[str]]] = [
    ("001_core", [
        """CREATE TABLE ratings (
            id TEXT PRIMARY KEY, device_id TEXT NOT NULL, site TEXT NOT NULL, location TEXT NOT NULL,
            scale TEXT NOT NULL, value INTEGER NOT NULL, sentiment TEXT NOT NULL, ts TEXT NOT NULL,
            received_at TEXT NOT NULL, seq INTEGER NOT NULL, reason TEXT, comment TEXT, contact TEXT, flags TEXT,
            boot_id TEXT, mono DOUBLE PRECISION, rev INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX ratings_site_ts ON ratings(site, ts)",
        "CREATE INDEX ratings_device_seq ON ratings(device_id, seq)",
        """CREATE TABLE alerts (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, site TEXT NOT NULL, location TEXT, device_id TEXT,
            rating_id TEXT, state TEXT NOT NULL DEFAULT 'open', opened_at TEXT NOT NULL, title TEXT NOT NULL,
            detail TEXT, notified_at TEXT)""",
        # One alert per (kind, rating): a redelivered rating never opens a second alert.
        "CREATE UNIQUE INDEX alerts_kind_rating ON alerts(kind, rating_id) WHERE rating_id IS NOT NULL",
        "CREATE INDEX alerts_unnotified ON alerts(opened_at) WHERE notified_at IS NULL",
        """CREATE TABLE rejected (
            id {serial}, received_at TEXT NOT NULL, topic TEXT NOT NULL, rating_id TEXT, reason TEXT NOT NULL,
            raw TEXT NOT NULL)""",
    ]),
    ("002_closed_loop", [
        # Clock repair: the device's own ts is kept; ts holds the repaired one when they differ.
        "ALTER TABLE ratings ADD COLUMN ts_device TEXT",
        "ALTER TABLE ratings ADD COLUMN ts_repaired INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX ratings_site_location_ts ON ratings(site, location, ts)",
        "CREATE INDEX ratings_device_ts ON ratings(site, device_id, ts)",
        # Lifecycle, grouping, escalation.
        "ALTER TABLE alerts ADD COLUMN group_key TEXT",
        "ALTER TABLE alerts ADD COLUMN severity TEXT NOT NULL DEFAULT 'alert'",
        "ALTER TABLE alerts ADD COLUMN parent_id TEXT",
        "ALTER TABLE alerts ADD COLUMN hits INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE alerts ADD COLUMN last_seen_at TEXT",
        "ALTER TABLE alerts ADD COLUMN level INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE alerts ADD COLUMN escalated_at TEXT",
        "ALTER TABLE alerts ADD COLUMN acked_by TEXT",
        "ALTER TABLE alerts ADD COLUMN acked_at TEXT",
        "ALTER TABLE alerts ADD COLUMN resolved_by TEXT",
        "ALTER TABLE alerts ADD COLUMN resolved_at TEXT",
        "ALTER TABLE alerts ADD COLUMN root_cause TEXT",
        "ALTER TABLE alerts ADD COLUMN action TEXT",
        "ALTER TABLE alerts ADD COLUMN reopened INTEGER NOT NULL DEFAULT 0",
        # One live alert per (kind, group): two workers evaluating the same window open it once.
        "CREATE UNIQUE INDEX alerts_live_group ON alerts(kind, group_key) WHERE state <> 'resolved'",
        "CREATE INDEX alerts_state ON alerts(state, site)",
        """CREATE TABLE alert_audit (
            id {serial}, alert_id TEXT NOT NULL, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
            from_state TEXT, to_state TEXT, note TEXT)""",
        "CREATE INDEX alert_audit_alert ON alert_audit(alert_id, id)",
        # Every delivery and every attempt.
        """CREATE TABLE deliveries (
            id TEXT PRIMARY KEY, alert_id TEXT NOT NULL, purpose TEXT NOT NULL, contact TEXT NOT NULL,
            url TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at TEXT NOT NULL,
            created_at TEXT NOT NULL, sent_at TEXT, last_error TEXT, digest_id TEXT, payload TEXT)""",
        "CREATE UNIQUE INDEX deliveries_once ON deliveries(alert_id, purpose, url)",
        "CREATE INDEX deliveries_due ON deliveries(state, next_at)",
        """CREATE TABLE delivery_attempts (
            id {serial}, delivery_id TEXT NOT NULL, at TEXT NOT NULL, ok INTEGER NOT NULL, error TEXT)""",
        # The latest retained status of each device.
        """CREATE TABLE device_status (
            site TEXT NOT NULL, device_id TEXT NOT NULL, location TEXT, state TEXT NOT NULL, ts TEXT,
            received_at TEXT NOT NULL, since TEXT NOT NULL, backlog INTEGER, oldest_unsent TEXT,
            disk_free_mb DOUBLE PRECISION, raw TEXT NOT NULL, PRIMARY KEY (site, device_id))""",
        # "You said, we did" items, published retained per location.
        """CREATE TABLE outcomes (
            id TEXT PRIMARY KEY, alert_id TEXT NOT NULL, site TEXT NOT NULL, location TEXT NOT NULL,
            text TEXT NOT NULL, resolved_at TEXT NOT NULL, published_at TEXT)""",
        "CREATE UNIQUE INDEX outcomes_alert ON outcomes(alert_id)",
        # The org tree and the rule settings, each one JSON document with a version.
        """CREATE TABLE documents (
            name TEXT PRIMARY KEY, body TEXT NOT NULL, version INTEGER NOT NULL, updated_at TEXT NOT NULL)""",
    ]),
    ("003_cooldown_index", [
        # The cooldown lookup of open_alert reads parent alerts only: a few rows, even when thousands of
        # negatives at one location were grouped under them.
        "CREATE INDEX alerts_cooldown ON alerts(kind, site, opened_at) WHERE parent_id IS NULL",
    ]),
    ("004_config_pushes", [
        # Every config push to a device (smileloop fleet push): the version is one higher than the highest so far.
        """CREATE TABLE config_pushes (
            site TEXT NOT NULL, device_id TEXT NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL,
            pushed_at TEXT NOT NULL, pushed_by TEXT NOT NULL, PRIMARY KEY (site, device_id, version))""",
    ]),
    ("005_org_audit", [
        # Every change of the organisation (sites, hours, locations, devices, contacts): who, what, when,
        # the tree before and after (contact URLs replaced by their count).
        """CREATE TABLE org_audit (
            id {serial}, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,
            before TEXT, after TEXT)""",
    ]),
    ("006_privacy_retention", [
        # What a visitor agreed to beside a contact ({"text", "lang", "ts"}), and the comment as screens may show
        # it (masked, central/moderation.py); ``comment`` keeps the original for admins until retention clears it.
        "ALTER TABLE ratings ADD COLUMN consent TEXT",
        "ALTER TABLE ratings ADD COLUMN comment_shown TEXT",
        # The retention purge (central/retention.py) finds its rows by age without scanning the ratings.
        "CREATE INDEX ratings_contact_age ON ratings(received_at) WHERE contact IS NOT NULL",
        "CREATE INDEX ratings_comment_age ON ratings(received_at) WHERE comment IS NOT NULL",
        "CREATE INDEX rejected_age ON rejected(received_at)",
        "CREATE INDEX deliveries_age ON deliveries(created_at)",
        "CREATE INDEX alert_audit_age ON alert_audit(at)",
        # A follow-up delivery no longer holds the visitor's address (it is looked up when sending): older rows
        # lose it now, and those still pending are not sent.
        "UPDATE deliveries SET url = 'followup:redacted:' || id, state = CASE WHEN state = 'pending' THEN 'failed' "
        "ELSE state END WHERE purpose = 'followup'",
    ]),
    ("007_privacy_requests", [
        # Every data subject request answered (export, erase): who, what, when — the subject as a hash of the
        # address (or a rating id), never the address itself (docs/PRIVACY.md).
        """CREATE TABLE privacy_audit (
            id {serial}, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL,
            detail TEXT)""",
        # Erasures a device still has to make in its own store: published retained on its erase topic until
        # its status reports them done.
        """CREATE TABLE privacy_requests (
            id TEXT PRIMARY KEY, site TEXT NOT NULL, device_id TEXT NOT NULL, rating_ids TEXT NOT NULL,
            created_at TEXT NOT NULL, done_at TEXT, erased INTEGER)""",
        "CREATE INDEX privacy_requests_pending ON privacy_requests(site, device_id) WHERE done_at IS NULL",
    ]),
    ("008_console_accounts", [
        # People who log in to the console (docs/CONSOLE.md): an argon2 hash, never the password; a role
        # (admin, manager, viewer) and, for a manager or viewer, the sites they may see (JSON list, empty = all
        # for an admin only); their language; failed logins for the backoff.
        """CREATE TABLE users (
            name TEXT PRIMARY KEY, role TEXT NOT NULL, sites TEXT NOT NULL, password_hash TEXT NOT NULL,
            language TEXT, created_at TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0, locked_until TEXT, last_login TEXT)""",
        # A session is known by the SHA-256 of its cookie value; it expires (idle and absolute).
        """CREATE TABLE sessions (
            id_hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, csrf TEXT NOT NULL, created_at TEXT NOT NULL,
            last_seen TEXT NOT NULL, expires_at TEXT NOT NULL)""",
        "CREATE INDEX sessions_user ON sessions(user_name)",
        # API tokens: a selector to find the row, the SHA-256 of the secret to check it.
        """CREATE TABLE api_tokens (
            selector TEXT PRIMARY KEY, user_name TEXT NOT NULL, secret_hash TEXT NOT NULL, label TEXT,
            created_at TEXT NOT NULL, last_used TEXT, revoked_at TEXT)""",
        # Failed logins per source address too: guessing many names from one place slows down as well.
        """CREATE TABLE login_failures (
            source TEXT PRIMARY KEY, failed INTEGER NOT NULL, last_at TEXT NOT NULL, locked_until TEXT)""",
        # An alert can be assigned to a person (who should act), beside who acknowledged it.
        "ALTER TABLE alerts ADD COLUMN assignee TEXT",
    ]),
    ("009_dashboard_rollups", [
        # The console's dashboards read rollups, not the ratings (central/store_dashboard.py): the visitors'
        # ratings (test taps and repeats left out) per site, *local* day of the site's time zone (the zone each
        # site's rows were made with is in rollup_zones) and location, counted with what the figures need: index
        # points (0-100 each), negatives, NPS and CSAT counts; per local hour too, and per reason.
        """CREATE TABLE rollup_days (
            site TEXT NOT NULL, day TEXT NOT NULL, location TEXT NOT NULL, n INTEGER NOT NULL,
            points DOUBLE PRECISION NOT NULL, negative INTEGER NOT NULL, nps_n INTEGER NOT NULL,
            promoters INTEGER NOT NULL, detractors INTEGER NOT NULL, csat_n INTEGER NOT NULL,
            csat_top INTEGER NOT NULL, PRIMARY KEY (site, day, location)){clustered}""",
        """CREATE TABLE rollup_hours (
            site TEXT NOT NULL, day TEXT NOT NULL, hour INTEGER NOT NULL, location TEXT NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY (site, day, hour, location)){clustered}""",
        # The same summed over the locations: what a heatmap of whole sites reads (a third of the rows).
        """CREATE TABLE rollup_site_hours (
            site TEXT NOT NULL, day TEXT NOT NULL, hour INTEGER NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY (site, day, hour)){clustered}""",
        """CREATE TABLE rollup_reasons (
            site TEXT NOT NULL, day TEXT NOT NULL, location TEXT NOT NULL, reason TEXT NOT NULL, n INTEGER NOT NULL,
            negative INTEGER NOT NULL, PRIMARY KEY (site, day, location, reason)){clustered}""",
        "CREATE TABLE rollup_zones (site TEXT PRIMARY KEY, timezone TEXT NOT NULL)",
        # (site, UTC day) whose rollups are stale: ingest marks them (one upsert per pair and batch), readers
        # recompute them from the ratings; ``gen`` grows with every mark, so a refresh clears only the mark it saw.
        """CREATE TABLE rollup_dirty (
            site TEXT NOT NULL, day TEXT NOT NULL, marked_at TEXT NOT NULL, gen INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (site, day))""",
        "INSERT INTO rollup_dirty (site, day, marked_at, gen) SELECT site, substr(ts, 1, 10), 'migration 009', 0 "
        "FROM ratings GROUP BY site, substr(ts, 1, 10)",
        # The latest comments of a range without reading every rating of it.
        "CREATE INDEX ratings_comment_ts ON ratings(ts) WHERE comment_shown IS NOT NULL",
    ]),
]


def migrate(db: Database) -> list[str]:
    """Apply the migrations this database lacks; the names applied now."""
    serial = getattr(db, "serial", "INTEGER PRIMARY KEY")
    clustered = " WITHOUT ROWID" if db.dialect == "sqlite" else ""
    applied: list[str] = []
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    for name, statements in MIGRATIONS:
        with db.transaction():
            if db.dialect == "postgresql":  # several workers may start at once
                db.execute("SELECT pg_advisory_xact_lock(7243001)")
            if db.one("SELECT 1 AS x FROM _migrations WHERE name = ?", (name,)):
                continue
            for sql in statements:
                db.execute(sql.replace("{serial}", serial).replace("{clustered}", clustered))
            db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, CURRENT_TIMESTAMP)", (name,))
            applied.append(name)
    return applied
