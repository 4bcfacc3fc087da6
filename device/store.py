"""The device's local SQLite store: ratings and the outbox they wait in until central has them.

The outbox is the truth (paho keeps its session in memory only). A rating moves
``queued → sent`` (the broker's PUBACK) ``→ delivered`` (central's receipt that it stored it), or
``→ rejected`` (central refused it, with the reason). ``sent`` rows go back to ``queued`` when no
receipt comes in time, and all of them when the sync agent restarts. Only receipts count.

Taps are written with ``synchronous=FULL`` so a tap the visitor saw acknowledged survives a power
cut; the queued rows are found through a partial index, never a scan of delivered rows.

Disk bounds: only delivered (or rejected) rows are ever deleted — after the retention period, or oldest
first when space runs low. A queued or sent rating is never dropped: when nothing is left to prune, the
tap fails loudly (:class:`StoreError`) instead of being lost quietly.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import sqlite_utils

from device.clock import parse_utc, utc_iso
from device.errors import StoreError
from device.model import Rating

QUEUED, SENT, DELIVERED, REJECTED = 0, 1, 2, 3
STATE_NAMES = {QUEUED: "queued", SENT: "sent", DELIVERED: "delivered", REJECTED: "rejected"}

_NEXT_SEQ = ("SELECT MAX(COALESCE((SELECT MAX(seq) FROM ratings), 0), "
             "CAST((SELECT value FROM meta WHERE key = 'seq') AS INTEGER)) + 1")
_KEEP_SEQ_FLOOR = ("UPDATE meta SET value = MAX(CAST(value AS INTEGER), (SELECT COALESCE(MAX(seq), 0) FROM ratings)) "
                   "WHERE key = 'seq'")
_PLENTY = 256 * 1024 * 1024  # bytes of room above which the free-space check is reused for a second

_COLUMNS = ("id, seq, ts, scale, value, location, sentiment, boot_id, mono, reason, comment, contact, "
            "flags, rev")


def _m001_ratings(db: sqlite_utils.Database) -> None:
    db.execute("""
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
        )""")
    db.execute("CREATE INDEX ratings_outbox ON ratings(priority DESC, seq) WHERE state = 0")
    db.execute("CREATE INDEX ratings_sent ON ratings(seq) WHERE state = 1")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta (key, value) VALUES ('seq', '0')")


def _m002_delivered_index(db: sqlite_utils.Database) -> None:
    # Pruning walks delivered rows by age; keep that off the tap path's indexes.
    db.execute("CREATE INDEX ratings_delivered ON ratings(delivered_at) WHERE state >= 2")


def _m003_outcomes_and_agent(db: sqlite_utils.Database) -> None:
    # "You said, we did" items arrive over MQTT through the sync agent; the kiosk only reads them here.
    db.execute("CREATE TABLE outcomes (id TEXT PRIMARY KEY, body TEXT NOT NULL, resolved_at TEXT, "
               "received_at TEXT NOT NULL)")
    # The sync agent (another process) leaves its status here for staff mode.
    db.execute("CREATE TABLE agent_status (key TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at TEXT NOT NULL)")


MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_ratings", _m001_ratings),
    ("002_delivered_index", _m002_delivered_index),
    ("003_outcomes_and_agent", _m003_outcomes_and_agent),
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
                 reserve_bytes: int = 1_000_000) -> None:
        """``max_bytes`` caps the database file (a small SD card's share; tests use it to fill the "disk").
        New taps stop ``reserve_bytes`` short of full, so the outbox can still record deliveries and prune."""
        self.path = Path(path)
        self.reserve_bytes = reserve_bytes
        self._max_pages: int | None = None
        self._page_size: int | None = None
        self._room_cache: tuple[int, float] | None = None  # (bytes, monotonic time measured)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False,
                                   timeout=busy_timeout_ms / 1000)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            if max_bytes is not None:
                page = int(conn.execute("PRAGMA page_size").fetchone()[0])
                self._max_pages = max(1, int(max_bytes) // page)
                conn.execute(f"PRAGMA max_page_count={self._max_pages}")
            self.db = sqlite_utils.Database(conn)
            self._conn = conn
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open device store {self.path}: {e}") from e
        except OSError as e:
            raise StoreError(f"cannot open device store {self.path}: {e.strerror}") from e

    # --- plumbing -----------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` takes the write lock up front, so two writers never deadlock mid-way."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                raise StoreError(f"device store {self.path} is busy or unwritable: {e}") from e
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            else:
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.Error as e:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise StoreError(f"device store {self.path} could not commit: {e}") from e

    def _migrate(self) -> None:
        with self._lock:
            self._conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
            done = {r[0] for r in self._conn.execute("SELECT name FROM _migrations")}
            for name, step in MIGRATIONS:
                if name in done:
                    continue
                with self._write():
                    if self._conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                        continue  # another process applied it while we waited for the lock
                    step(self.db)
                    self._conn.execute("INSERT INTO _migrations VALUES (?, datetime('now'))", (name,))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def integrity_check(self) -> str:
        with self._lock:
            return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])

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
            backlog = self.backlog()
            raise StoreError(f"storage full at {self.path}: the tap was not stored; {backlog.undelivered} unsent "
                             f"ratings are kept, {freed} delivered ones were pruned to make room") from e

    def _add(self, make: Callable[[int], Rating]) -> Rating:
        try:
            room = self._room()
        except (sqlite3.Error, OSError) as e:  # a closed, corrupt or vanished store: the kiosk shows out-of-order
            raise StoreError(f"could not record the tap in {self.path}: {e}") from e
        if room < self.reserve_bytes:
            raise StoreError(f"only {room} bytes left for {self.path}") from sqlite3.OperationalError(
                "database or disk is full (reserve reached)")
        try:
            with self._write() as c:
                # Read-only: the unique seq index gives the newest; meta holds the floor that pruning leaves, so
                # a seq is never reused. (Writing a counter row per tap cost an extra page in every fsync.)
                seq = int(c.execute(_NEXT_SEQ).fetchone()[0])
                rating = make(seq)
                c.execute(
                    f"INSERT INTO ratings ({_COLUMNS}, priority) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (rating.id, rating.seq, utc_iso(rating.ts), rating.scale, rating.value, rating.location,
                     rating.sentiment, rating.boot_id, rating.mono, rating.reason, rating.comment,
                     rating.contact, json.dumps(list(rating.flags)) if rating.flags else None, rating.rev,
                     1 if rating.sentiment == "negative" else 0))
            return rating
        except sqlite3.Error as e:
            raise StoreError(f"could not record the tap in {self.path}: {e}") from e

    def amend(self, rating_id: str, **fields: str | None) -> Rating:
        """Add the follow-up (reason, comment, contact) to a stored rating; it is queued again with a new rev."""
        allowed = {"reason", "comment", "contact"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot amend {', '.join(sorted(bad))}; only {', '.join(sorted(allowed))}")
        if not fields:
            return self.get(rating_id)
        sets = ", ".join(f"{k} = ?" for k in fields)
        try:
            with self._write() as c:
                cur = c.execute(f"UPDATE ratings SET {sets}, rev = rev + 1, state = 0 WHERE id = ? "
                                "AND state != 3", (*fields.values(), rating_id))
                if cur.rowcount == 0:
                    raise StoreError(f"no rating {rating_id} to amend")
        except sqlite3.Error as e:
            raise StoreError(f"could not amend rating {rating_id}: {e}") from e
        return self.get(rating_id)

    # --- reading ------------------------------------------------------------------------------
    def get(self, rating_id: str) -> Rating:
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM ratings WHERE id = ?", (rating_id,)).fetchone()
        if row is None:
            raise StoreError(f"no rating {rating_id}")
        return _rating(row)

    def state_of(self, rating_id: str) -> str:
        with self._lock:
            row = self._conn.execute("SELECT state FROM ratings WHERE id = ?", (rating_id,)).fetchone()
        if row is None:
            raise StoreError(f"no rating {rating_id}")
        return STATE_NAMES[row[0]]

    def all_ratings(self) -> list[dict[str, object]]:
        """Every row as a dict, oldest first (for tests, staff status and exports)."""
        with self._lock:
            return list(self.db.query("SELECT * FROM ratings ORDER BY seq"))

    def last_rating(self) -> Rating | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM ratings ORDER BY seq DESC LIMIT 1").fetchone()
        return _rating(row) if row else None

    def backlog(self) -> Backlog:
        with self._lock:
            q = self._conn.execute("SELECT count(*) FROM ratings WHERE state = 0").fetchone()[0]
            s = self._conn.execute("SELECT count(*) FROM ratings WHERE state = 1").fetchone()[0]
            oldest = self._conn.execute(
                "SELECT min(ts) FROM (SELECT (SELECT ts FROM ratings WHERE state = 0 ORDER BY seq LIMIT 1) AS ts "
                "UNION ALL SELECT (SELECT ts FROM ratings WHERE state = 1 ORDER BY seq LIMIT 1))").fetchone()[0]
        return Backlog(queued=q, sent=s, oldest_unsent_ts=oldest)

    # --- the outbox, for the sync agent -------------------------------------------------------
    def next_batch(self, limit: int, exclude: Iterable[str] = ()) -> list[Rating]:
        """The oldest queued ratings, negatives first, leaving out ``exclude`` (those already in flight)."""
        skip = set(exclude)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM ratings WHERE state = 0 ORDER BY priority DESC, seq LIMIT ?",
                (limit + len(skip),)).fetchall()
        out = [_rating(r) for r in rows if r[0] not in skip]
        return out[:limit]

    def mark_sent(self, revisions: Sequence[tuple[str, int]], at: datetime) -> int:
        """The broker acknowledged these (id, rev): wait for central's receipt now."""
        return self._update_many(
            "UPDATE ratings SET state = 1, sent_at = ?, attempts = attempts + 1 "
            "WHERE id = ? AND rev = ? AND state = 0",
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
            with self._write() as c:
                return c.execute("UPDATE ratings SET state = 0 WHERE state = 1").rowcount
        return self._update_many("UPDATE ratings SET state = 0 WHERE id = ? AND state = 1", [(i,) for i in ids])

    def prune(self, before: datetime, limit: int = 10_000) -> int:
        """Delete delivered/rejected ratings older than ``before``; never a queued or sent one."""
        with self._write() as c:
            c.execute(_KEEP_SEQ_FLOOR)
            return c.execute(
                "DELETE FROM ratings WHERE rowid IN (SELECT rowid FROM ratings WHERE state >= 2 "
                "AND delivered_at < ? LIMIT ?)", (utc_iso(before), limit)).rowcount

    def prune_oldest(self, limit: int) -> int:
        """Space is short: delete up to ``limit`` delivered/rejected ratings, oldest delivery first, whatever
        their age. Queued and sent ratings are never touched. Returns how many went."""
        try:
            with self._write() as c:
                c.execute(_KEEP_SEQ_FLOOR)
                return c.execute(
                    "DELETE FROM ratings WHERE rowid IN (SELECT rowid FROM ratings WHERE state >= 2 "
                    "ORDER BY delivered_at LIMIT ?)", (int(limit),)).rowcount
        except (sqlite3.Error, StoreError):
            return 0  # a full disk can refuse even the delete's journal; the caller reports the shortage

    def _room(self) -> int:
        """Bytes a new tap may still use (free disk and freed pages, within the page cap); no file scan.

        With plenty of room the answer is reused for up to a second (taps cannot fill hundreds of MB in one);
        close to full it is measured on every tap.
        """
        cached = self._room_cache
        if cached is not None and cached[0] > _PLENTY and time.monotonic() - cached[1] < 1.0:
            return cached[0]
        room = self._measure_room()
        self._room_cache = (room, time.monotonic())
        return room

    def _measure_room(self) -> int:
        st = os.statvfs(self.path.parent)
        with self._lock:
            if self._page_size is None:  # fixed once the file exists; one PRAGMA less per tap
                self._page_size = int(self._conn.execute("PRAGMA page_size").fetchone()[0])
            page = self._page_size
            free_pages = int(self._conn.execute("PRAGMA freelist_count").fetchone()[0])
            if self._max_pages is None:
                return st.f_bavail * st.f_frsize + free_pages * page
            pages = int(self._conn.execute("PRAGMA page_count").fetchone()[0])
        return min(st.f_bavail * st.f_frsize + free_pages * page, (self._max_pages - pages + free_pages) * page)

    def space(self) -> Space:
        """Free space for this store in MB (the tighter of the disk and the ``max_bytes`` cap) and its size."""
        with self._lock:
            page = int(self._conn.execute("PRAGMA page_size").fetchone()[0])
            pages = int(self._conn.execute("PRAGMA page_count").fetchone()[0])
            free_pages = int(self._conn.execute("PRAGMA freelist_count").fetchone()[0])
            cap = int(self._conn.execute("PRAGMA max_page_count").fetchone()[0])
        disk_free = shutil.disk_usage(self.path.parent).free + free_pages * page  # freed pages are room too
        cap_free = (cap - pages + free_pages) * page
        capped = cap_free < disk_free
        return Space(free_mb=round(min(disk_free, cap_free) / 1e6, 3), db_mb=round(pages * page / 1e6, 3),
                     capped=capped)

    # --- what comes back from central, for the kiosk ------------------------------------------
    def replace_outcomes(self, items: Sequence[dict[str, object]], at: datetime) -> None:
        """Replace the "you said, we did" items with the latest retained set from central."""
        with self._write() as c:
            c.execute("DELETE FROM outcomes")
            for item in items:
                c.execute("INSERT OR REPLACE INTO outcomes (id, body, resolved_at, received_at) VALUES (?,?,?,?)",
                          (str(item["id"]), json.dumps(item), item.get("resolved_at"), utc_iso(at)))

    def outcomes(self) -> list[dict[str, object]]:
        with self._lock:
            rows = self._conn.execute("SELECT body FROM outcomes ORDER BY resolved_at DESC").fetchall()
        return [json.loads(r[0]) for r in rows]

    def save_agent_status(self, status: dict[str, object], at: datetime) -> None:
        with self._write() as c:
            c.execute("INSERT OR REPLACE INTO agent_status (key, body, updated_at) VALUES ('sync', ?, ?)",
                      (json.dumps(status), utc_iso(at)))

    def agent_status(self) -> dict[str, object] | None:
        """The sync agent's last saved status plus ``updated_at``, or None if it never ran."""
        with self._lock:
            row = self._conn.execute("SELECT body, updated_at FROM agent_status WHERE key = 'sync'").fetchone()
        if row is None:
            return None
        return {**json.loads(row[0]), "updated_at": row[1]}

    def _update_many(self, sql: str, params: list[tuple[object, ...]]) -> int:
        if not params:
            return 0
        try:
            with self._write() as c:
                changed = 0
                for p in params:
                    changed += c.execute(sql, p).rowcount
                return changed
        except sqlite3.Error as e:
            raise StoreError(f"could not update the outbox in {self.path}: {e}") from e


def _is_full(error: BaseException | None) -> bool:
    """SQLITE_FULL: the disk, or the store's page cap, has no room left."""
    return isinstance(error, sqlite3.Error) and (
        getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(error))


def _rating(row: Sequence[object]) -> Rating:
    (rid, seq, ts, scale, value, location, sentiment, boot_id, mono, reason, comment, contact,
     flags, rev) = row
    return Rating(
        id=str(rid), seq=int(seq), ts=parse_utc(str(ts)), scale=str(scale), value=int(value),  # type: ignore[call-overload]
        location=str(location), sentiment=sentiment,  # type: ignore[arg-type]
        boot_id=str(boot_id), mono=float(mono),  # type: ignore[arg-type]
        reason=reason, comment=comment, contact=contact,  # type: ignore[arg-type]
        flags=tuple(json.loads(flags)) if flags else (), rev=int(rev))  # type: ignore[arg-type,call-overload]
