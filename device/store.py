"""The device's local SQLite store: ratings and the outbox they wait in until central has them.

The outbox is the truth (paho keeps its session in memory only). A rating moves ``queued → sent`` (the broker's
PUBACK) ``→ delivered`` (central's receipt that it stored it), or ``→ rejected`` (central refused it, with the
reason). ``sent`` rows go back to ``queued`` when no receipt comes in time, and all of them when the sync agent
restarts. Only receipts count. Taps are written with ``synchronous=FULL`` so a tap the visitor saw acknowledged
survives a power cut; the queued rows are found through a partial index, never a scan of delivered rows.

Disk bounds: only delivered (or rejected) rows are ever deleted — after the retention period, or oldest first
when space runs low; a queued or sent rating never is (the tap fails loudly with :class:`StoreError` instead).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from device.consent import CONSENT_COLUMN, CONTACT_KEEP, FORGET_CONTACTS, dump, load
from device.errors import StoreError
from device.lockout import PIN_LOCKOUT_TABLE
from smileloop_core.clock import Clock, SystemClock, parse_utc, utc_iso
from smileloop_core.model import Rating
from smileloop_core.sqlite import Migration, connect, migrate, transaction

QUEUED, SENT, DELIVERED, REJECTED = 0, 1, 2, 3
STATE_NAMES = {QUEUED: "queued", SENT: "sent", DELIVERED: "delivered", REJECTED: "rejected"}

_NEXT_SEQ = ("SELECT MAX(COALESCE((SELECT MAX(seq) FROM ratings), 0), "
             "CAST((SELECT value FROM meta WHERE key = 'seq') AS INTEGER)) + 1")
_KEEP_SEQ_FLOOR = ("UPDATE meta SET value = MAX(CAST(value AS INTEGER), (SELECT COALESCE(MAX(seq), 0) FROM ratings)) "
                   "WHERE key = 'seq'")
_PLENTY = 256 * 1024 * 1024  # bytes of room above which the free-space check is reused for a second
_COLUMNS = "id,seq,ts,scale,value,location,sentiment,boot_id,mono,reason,comment,contact,flags,rev,consent"

MIGRATIONS: list[Migration] = [
    ("001_ratings", """
        CREATE TABLE ratings (
            id TEXT PRIMARY KEY,
            seq INTEGER NOT NULL UNIQUE,
            ts TEXT NOT NULL,
            scale TEXT NOT NULL,
            value INTEGER NOT NULL,
            location TEXT NOT NULL,
            sentiment TEXT NOT NULL,
            boot_id TEXT NOT NULL,
            mono REAL NOT NULL,
            reason TEXT,
            comment TEXT,
            contact TEXT,
            flags TEXT,
            rev INTEGER NOT NULL DEFAULT 0,
            priority INTEGER NOT NULL DEFAULT 0,
            state INTEGER NOT NULL DEFAULT 0,
            sent_at TEXT,
            delivered_at TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            rejected_reason TEXT
        );
        CREATE INDEX ratings_outbox ON ratings(priority DESC, seq) WHERE state = 0;
        CREATE INDEX ratings_sent ON ratings(seq) WHERE state = 1;
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta (key, value) VALUES ('seq', '0');
    """),
    # Pruning walks delivered rows by age; keep that off the tap path's indexes.
    ("002_delivered_index", "CREATE INDEX ratings_delivered ON ratings(delivered_at) WHERE state >= 2"),
    # "You said, we did" items arrive through the sync agent, which also leaves its status here for staff mode.
    ("003_outcomes_and_agent", """
        CREATE TABLE outcomes (id TEXT PRIMARY KEY, body TEXT NOT NULL, resolved_at TEXT, received_at TEXT NOT NULL);
        CREATE TABLE agent_status (key TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at TEXT NOT NULL);
    """),
    ("004_pin_lockout", PIN_LOCKOUT_TABLE),  # wrong staff PINs and their lockout, so a restart forgets neither
    ("005_consent", CONSENT_COLUMN),  # what a visitor leaving contact details agreed to (JSON), sent beside it
]


@dataclass(frozen=True)
class Space:
    """Room left for the store: the file system's free space, or the store's own cap if that is tighter."""

    free_mb: float
    db_mb: float
    capped: bool  # True when ``free_mb`` is the store's ``max_bytes`` cap, not the disk


@dataclass(frozen=True)
class Backlog:
    queued: int
    sent: int
    oldest_unsent_ts: str | None

    @property
    def undelivered(self) -> int:
        return self.queued + self.sent


class DeviceStore:
    """One file, one connection, one lock: the single writer for this process.

    Other processes (the kiosk and the sync agent) open their own ``DeviceStore`` on the same file;
    WAL lets readers go on while one writes, and ``busy_timeout`` serialises the writers.
    """

    def __init__(self, path: str | Path, *, synchronous: Literal["FULL", "NORMAL"] = "FULL",
                 busy_timeout_ms: int = 5000, max_bytes: int | None = None,
                 reserve_bytes: int = 1_000_000, clock: Clock | None = None) -> None:
        """``max_bytes`` caps the database file (a small SD card's share; tests use it to fill the "disk").
        New taps stop ``reserve_bytes`` short of full, so the outbox can still record deliveries and prune."""
        self.path = Path(path)
        self.reserve_bytes = reserve_bytes
        self._clock: Clock = clock or SystemClock()
        self._max_pages: int | None = None
        self._page_size: int | None = None
        self._room_cache: tuple[int, float] | None = None  # (bytes, monotonic time measured)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = connect(self.path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
            conn.row_factory = None  # the store reads its rows by position
            if max_bytes is not None:
                page = int(conn.execute("PRAGMA page_size").fetchone()[0])
                self._max_pages = max(1, int(max_bytes) // page)
                conn.execute(f"PRAGMA max_page_count={self._max_pages}")
            self._conn = conn
            migrate(conn, MIGRATIONS, lock=self._lock)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open device store {self.path}: {e}") from e
        except OSError as e:
            raise StoreError(f"cannot open device store {self.path}: {e.strerror}") from e

    # --- plumbing -----------------------------------------------------------------------------
    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``, rolled back on any error); SQLite's errors leave the
        store as :class:`StoreError` saying ``what`` failed, with the ``sqlite3`` error as its cause."""
        try:
            with transaction(self._conn, lock=self._lock) as c:
                yield c
        except sqlite3.Error as e:
            raise StoreError(f"{what} in {self.path}: {e}") from e

    @contextmanager
    def _read(self, what: str) -> Iterator[sqlite3.Connection]:
        """The connection under this process's lock; a closed or corrupt file raises :class:`StoreError`."""
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as e:
                raise StoreError(f"{what} in {self.path}: {e}") from e

    def close(self) -> None:
        with self._read("could not close") as c:
            c.close()

    def integrity_check(self) -> str:
        with self._read("could not check") as c:
            return str(c.execute("PRAGMA integrity_check").fetchone()[0])

    # --- the tap path -------------------------------------------------------------------------
    def add(self, make: Callable[[int], Rating]) -> Rating:
        """Allocate the next ``seq``, build the rating with it and store it, in one durable transaction.

        When the disk (or the ``max_bytes`` cap) is full, delivered rows make room and the tap is tried once
        more; if nothing can be freed the tap fails with a :class:`StoreError` saying so.
        """
        try:
            return self._add(make)
        except StoreError as e:
            if not _is_full(e.__cause__):
                raise
        freed = self.prune_oldest(1000)
        try:
            return self._add(make)
        except StoreError as e:
            if not _is_full(e.__cause__):
                raise
            kept = self.backlog().undelivered
            raise StoreError(f"storage full at {self.path}: the tap was not stored; {kept} unsent ratings are kept, "
                             f"{freed} delivered ones were pruned to make room") from e

    def _add(self, make: Callable[[int], Rating]) -> Rating:
        room = self._room()
        if room < self.reserve_bytes:
            raise StoreError(f"only {room} bytes left for {self.path}") from sqlite3.OperationalError(
                "database or disk is full (reserve reached)")
        with self._write("could not record the tap") as c:
            # Read-only: the unique seq index gives the newest; meta holds the floor that pruning leaves, so
            # a seq is never reused. (Writing a counter row per tap cost an extra page in every fsync.)
            seq = int(c.execute(_NEXT_SEQ).fetchone()[0])
            rating = make(seq)
            c.execute(
                f"INSERT INTO ratings ({_COLUMNS}, priority) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (rating.id, rating.seq, utc_iso(rating.ts), rating.scale, rating.value, rating.location,
                 rating.sentiment, rating.boot_id, rating.mono, rating.reason, rating.comment,
                 rating.contact, json.dumps(list(rating.flags)) if rating.flags else None, rating.rev,
                 dump(rating.consent), 1 if rating.sentiment == "negative" else 0))
        return rating

    def amend(self, rating_id: str, **fields: str | None) -> Rating:
        """Add the follow-up (reason, comment, contact, consent as JSON) to a rating; it is queued again, rev + 1."""
        bad = set(fields) - {"reason", "comment", "contact", "consent"}
        if bad:
            raise ValueError(f"cannot amend {', '.join(sorted(bad))}; only comment, contact, consent, reason")
        if not fields:
            return self.get(rating_id)
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._write(f"could not amend rating {rating_id}") as c:
            cur = c.execute(f"UPDATE ratings SET {sets}, rev = rev + 1, state = 0 WHERE id = ? "
                            "AND state != 3", (*fields.values(), rating_id))
            if cur.rowcount == 0:
                raise StoreError(f"no rating {rating_id} to amend")
        return self.get(rating_id)

    # --- reading ------------------------------------------------------------------------------
    def get(self, rating_id: str) -> Rating:
        with self._read("could not read a rating") as c:
            row = c.execute(f"SELECT {_COLUMNS} FROM ratings WHERE id = ?", (rating_id,)).fetchone()
        if row is None:
            raise StoreError(f"no rating {rating_id}")
        return _rating(row)

    def state_of(self, rating_id: str) -> str:
        with self._read("could not read a rating") as c:
            row = c.execute("SELECT state FROM ratings WHERE id = ?", (rating_id,)).fetchone()
        if row is None:
            raise StoreError(f"no rating {rating_id}")
        return STATE_NAMES[row[0]]

    def all_ratings(self) -> list[dict[str, object]]:
        """Every row as a dict, oldest first (for tests, staff status and exports)."""
        with self._read("could not read the ratings") as c:
            cur = c.execute("SELECT * FROM ratings ORDER BY seq")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur]

    def last_rating(self) -> Rating | None:
        with self._read("could not read the last rating") as c:
            row = c.execute(f"SELECT {_COLUMNS} FROM ratings ORDER BY seq DESC LIMIT 1").fetchone()
        return _rating(row) if row else None

    def backlog(self) -> Backlog:
        with self._read("could not count the backlog") as c:
            q, s = c.execute("SELECT count(*) FILTER (WHERE state = 0), count(*) FILTER (WHERE state = 1) "
                             "FROM ratings WHERE state <= 1").fetchone()
            oldest = c.execute(
                "SELECT min(ts) FROM (SELECT (SELECT ts FROM ratings WHERE state = 0 ORDER BY seq LIMIT 1) AS ts "
                "UNION ALL SELECT (SELECT ts FROM ratings WHERE state = 1 ORDER BY seq LIMIT 1))").fetchone()[0]
        return Backlog(queued=q, sent=s, oldest_unsent_ts=oldest)

    # --- the outbox, for the sync agent -------------------------------------------------------
    def next_batch(self, limit: int, exclude: Iterable[str] = ()) -> list[Rating]:
        """The oldest queued ratings, negatives first, leaving out ``exclude`` (those already in flight)."""
        skip = set(exclude)
        with self._read("could not read the outbox") as c:
            rows = c.execute(f"SELECT {_COLUMNS} FROM ratings WHERE state = 0 ORDER BY priority DESC, seq LIMIT ?",
                             (limit + len(skip),)).fetchall()
        return [_rating(r) for r in rows if r[0] not in skip][:limit]

    def mark_sent(self, revisions: Sequence[tuple[str, int]], at: datetime) -> int:
        """The broker acknowledged these (id, rev): wait for central's receipt now."""
        return self._update_many(
            "UPDATE ratings SET state = 1, sent_at = ?, attempts = attempts + 1 WHERE id = ? AND rev = ? AND state = 0",
            [(utc_iso(at), i, r) for i, r in revisions])

    def mark_delivered(self, revisions: Sequence[tuple[str, int]], at: datetime) -> int:
        """Central has stored these (id, rev); a receipt for an older rev leaves an amended rating queued."""
        return self._update_many(
            "UPDATE ratings SET state = 2, delivered_at = ? WHERE id = ? AND rev = ? AND state IN (0, 1)",
            [(utc_iso(at), i, r) for i, r in revisions])

    def mark_rejected(self, reasons: Sequence[tuple[str, str]], at: datetime) -> int:
        """Central refused these for good; keep them, with the reason, but stop sending them."""
        return self._update_many(
            "UPDATE ratings SET state = 3, delivered_at = ?, rejected_reason = ? WHERE id = ? AND state IN (0, 1)",
            [(utc_iso(at), why, i) for i, why in reasons])

    def requeue(self, ids: Iterable[str] | None = None) -> int:
        """Send again: the given ``sent`` ratings (no receipt in time), or all of them (agent start)."""
        if ids is None:
            return self._update_many("UPDATE ratings SET state = 0 WHERE state = 1", [()])
        return self._update_many("UPDATE ratings SET state = 0 WHERE id = ? AND state = 1", [(i,) for i in ids])

    def prune(self, before: datetime, limit: int = 10_000) -> int:
        """Delete delivered/rejected ratings older than ``before`` (never queued or sent); forget older contacts."""
        with self._write("could not prune") as c:
            c.execute(FORGET_CONTACTS, (utc_iso(self._clock.now() - CONTACT_KEEP),))
            c.execute(_KEEP_SEQ_FLOOR)
            return int(c.execute(
                "DELETE FROM ratings WHERE rowid IN (SELECT rowid FROM ratings WHERE state >= 2 "
                "AND delivered_at < ? LIMIT ?)", (utc_iso(before), limit)).rowcount)

    def prune_oldest(self, limit: int) -> int:
        """Space is short: delete up to ``limit`` delivered/rejected ratings, oldest delivery first, whatever
        their age. Queued and sent ratings are never touched. Returns how many went."""
        try:
            with self._write("could not prune") as c:
                c.execute(_KEEP_SEQ_FLOOR)
                return int(c.execute(
                    "DELETE FROM ratings WHERE rowid IN (SELECT rowid FROM ratings WHERE state >= 2 "
                    "ORDER BY delivered_at LIMIT ?)", (int(limit),)).rowcount)
        except StoreError:
            return 0  # a full disk can refuse even the delete's journal; the caller reports the shortage

    def _room(self) -> int:
        """Bytes a new tap may still use (free disk and freed pages, within the page cap); no file scan.

        With plenty of room the answer is reused for up to a second (taps cannot fill hundreds of MB in one);
        close to full it is measured on every tap.
        """
        now = self._clock.monotonic()
        cached = self._room_cache
        if cached is not None and cached[0] > _PLENTY and 0 <= now - cached[1] < 1.0:
            return cached[0]
        room = self._measure_room()
        self._room_cache = (room, now)
        return room

    def _measure_room(self) -> int:
        try:
            st = os.statvfs(self.path.parent)
        except OSError as e:  # the folder went away: the kiosk shows out-of-order
            raise StoreError(f"could not record the tap in {self.path}: {e}") from e
        with self._read("could not record the tap") as c:
            if self._page_size is None:  # fixed once the file exists; one PRAGMA less per tap
                self._page_size = int(c.execute("PRAGMA page_size").fetchone()[0])
            page = self._page_size
            free_pages = int(c.execute("PRAGMA freelist_count").fetchone()[0])
            if self._max_pages is None:
                return st.f_bavail * st.f_frsize + free_pages * page
            pages = int(c.execute("PRAGMA page_count").fetchone()[0])
        return min(st.f_bavail * st.f_frsize + free_pages * page, (self._max_pages - pages + free_pages) * page)

    def space(self) -> Space:
        """Free space for this store in MB (the tighter of the disk and the ``max_bytes`` cap) and its size."""
        with self._read("could not measure the store") as c:
            page = int(c.execute("PRAGMA page_size").fetchone()[0])
            pages = int(c.execute("PRAGMA page_count").fetchone()[0])
            free_pages = int(c.execute("PRAGMA freelist_count").fetchone()[0])
            cap = int(c.execute("PRAGMA max_page_count").fetchone()[0])
        try:
            disk_free = shutil.disk_usage(self.path.parent).free + free_pages * page  # freed pages are room too
        except OSError as e:
            raise StoreError(f"could not measure the disk under {self.path}: {e}") from e
        cap_free = (cap - pages + free_pages) * page
        return Space(free_mb=round(min(disk_free, cap_free) / 1e6, 3), db_mb=round(pages * page / 1e6, 3),
                     capped=cap_free < disk_free)

    # --- what comes back from central, for the kiosk ------------------------------------------
    def replace_outcomes(self, items: Sequence[dict[str, object]], at: datetime) -> None:
        """Replace the "you said, we did" items with the latest retained set from central."""
        with self._write("could not store the outcomes") as c:
            c.execute("DELETE FROM outcomes")
            for item in items:
                c.execute("INSERT OR REPLACE INTO outcomes (id, body, resolved_at, received_at) VALUES (?,?,?,?)",
                          (str(item["id"]), json.dumps(item), item.get("resolved_at"), utc_iso(at)))

    def outcomes(self) -> list[dict[str, object]]:
        with self._read("could not read the outcomes") as c:
            rows = c.execute("SELECT body FROM outcomes ORDER BY resolved_at DESC").fetchall()
        return [json.loads(r[0]) for r in rows]

    def save_agent_status(self, status: dict[str, object], at: datetime) -> None:
        with self._write("could not save the agent status") as c:
            c.execute("INSERT OR REPLACE INTO agent_status (key, body, updated_at) VALUES ('sync', ?, ?)",
                      (json.dumps(status), utc_iso(at)))

    def agent_status(self) -> dict[str, object] | None:
        """The sync agent's last saved status plus ``updated_at``, or None if it never ran."""
        with self._read("could not read the agent status") as c:
            row = c.execute("SELECT body, updated_at FROM agent_status WHERE key = 'sync'").fetchone()
        if row is None:
            return None
        return {**json.loads(row[0]), "updated_at": row[1]}

    def _update_many(self, sql: str, params: list[tuple[object, ...]]) -> int:
        if not params:
            return 0
        with self._write("could not update the outbox") as c:
            return sum(c.execute(sql, p).rowcount for p in params)


def _is_full(error: BaseException | None) -> bool:
    """SQLITE_FULL: the disk, or the store's page cap, has no room left."""
    return isinstance(error, sqlite3.Error) and (
        getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(error))


def _rating(row: Sequence[Any]) -> Rating:
    rid, seq, ts, scale, value, location, sentiment, boot_id, mono, reason, comment, contact, flags, rev, consent = row
    return Rating(id=rid, seq=seq, ts=parse_utc(ts), scale=scale, value=value, location=location, sentiment=sentiment,
                  boot_id=boot_id, mono=mono, reason=reason, comment=comment, contact=contact,
                  flags=tuple(json.loads(flags)) if flags else (), rev=rev, consent=load(consent))
