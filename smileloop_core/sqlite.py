"""One way for every store to open a SQLite file, write to it and migrate its schema.

``connect`` opens a connection in autocommit mode (so transactions are ours, not the ``sqlite3`` module's),
with WAL, the ``synchronous`` level the caller needs and a busy timeout. ``transaction`` takes the write lock up
front with ``BEGIN IMMEDIATE`` (two writers never deadlock half-way), commits at the end and rolls back on any
exception; used inside another ``transaction`` it joins the outer one (a savepoint: a failed inner block undoes
only its own writes, and nothing is committed before the outer block ends). ``migrate`` applies numbered
migrations in order, each in its own transaction together with the record of it.

Example::

    conn = connect("inventory.db", synchronous="FULL", foreign_keys=True)
    migrate(conn, [("001_items", "CREATE TABLE items (id TEXT PRIMARY KEY, n INTEGER NOT NULL)")])
    with transaction(conn):
        conn.execute("INSERT INTO items VALUES ('a', 1)")

The record of applied migrations is the ``_migrations`` table (``name TEXT PRIMARY KEY, applied_at TEXT``) that
the device store, the inventory and central have always written, so files made before this module open as they
are. sqlite-utils' own ``Migrations`` (4.x) was considered and not chosen: it keeps its record in another table
(``_sqlite_migrations``, with a migration-set column), so existing files would need converting; its transaction
is not ``BEGIN IMMEDIATE`` and it does not look again once it holds the lock, so a kiosk and its sync agent opening
a new file at the same moment could both try the same migration; and it needs sqlite-utils 4, where the project
allows 3.36. Here a migration is re-checked inside its write transaction, so the second opener skips it.

A migration is a SQL script (statements run one by one inside the transaction: ``executescript`` would commit
half-way) or a callable taking the connection; a step written for sqlite-utils is wrapped as
``lambda conn: step(sqlite_utils.Database(conn))``.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Literal

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
MigrationStep = str | Callable[[sqlite3.Connection], object]
Migration = tuple[str, MigrationStep]

MIGRATIONS_TABLE = "_migrations"
_CREATE_MIGRATIONS = f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (name TEXT PRIMARY KEY, applied_at TEXT)"
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_savepoints = itertools.count(1)


def connect(path: str | Path, *, synchronous: Synchronous = "NORMAL", busy_timeout_ms: int = 5000,
            foreign_keys: bool = False, check_same_thread: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode with WAL, ``synchronous`` and a busy timeout; rows are ``sqlite3.Row``.

    ``synchronous="FULL"`` where an acknowledged write must survive a power cut (a visitor's tap), ``NORMAL``
    where losing the last moments is acceptable. Raises ``sqlite3.DatabaseError`` if the file is not a database.
    """
    if synchronous not in _SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, not {synchronous!r}")
    if busy_timeout_ms < 0:
        raise ValueError(f"busy_timeout_ms must be 0 or more, not {busy_timeout_ms}")
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=check_same_thread,
                           timeout=busy_timeout_ms / 1000)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        _switch_to_wal(conn, busy_timeout_ms / 1000)
        conn.execute(f"PRAGMA synchronous={synchronous}")
        if foreign_keys:
            conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _switch_to_wal(conn: sqlite3.Connection, patience: float) -> None:
    """``journal_mode=WAL``; two first opens of a new file at once can get "database is locked" at once, without
    the busy handler being asked, so that is retried (briefly) within the busy timeout."""
    deadline = time.monotonic() + max(patience, 0.1)
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


@contextmanager
def transaction(conn: sqlite3.Connection, *, lock: threading.RLock | None = None) -> Iterator[sqlite3.Connection]:
    """One write transaction: ``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on any exception (re-raised).

    Inside an open transaction it joins it through a savepoint. ``lock`` (an ``RLock`` shared by the threads using
    ``conn``) is held throughout, so this process has one writer at a time on the connection.
    """
    with lock if lock is not None else nullcontext():
        if conn.in_transaction:
            yield from _savepoint(conn)
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _savepoint(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    name = f"smileloop_{next(_savepoints)}"
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")


def applied(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations this file has, in the order they were applied (none for a new file)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                    (MIGRATIONS_TABLE,)).fetchone() is None:
        return []
    return [str(r[0]) for r in conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY rowid")]


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration], *,
            lock: threading.RLock | None = None) -> list[str]:
    """Apply, in order, the migrations this file lacks; returns the names applied now.

    Each runs in its own transaction with its record, so a failing one leaves the file as the one before
    left it (and raises). Never edit a migration that has shipped: add the next one.
    """
    names = [name for name, _ in migrations]
    if len(set(names)) != len(names):
        raise ValueError(f"migration names must be unique: {names}")
    with lock if lock is not None else nullcontext():
        done = set(applied(conn))
        now: list[str] = []
        for name, step in migrations:
            if name in done:
                continue
            with transaction(conn):
                conn.execute(_CREATE_MIGRATIONS)
                if conn.execute(f"SELECT 1 FROM {MIGRATIONS_TABLE} WHERE name = ?", (name,)).fetchone():
                    continue  # another process applied it while we waited for the write lock
                if isinstance(step, str):
                    run_script(conn, step)
                else:
                    step(conn)
                conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name, applied_at) VALUES (?, datetime('now'))",
                             (name,))
            now.append(name)
        return now


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run the statements of ``script`` one by one, inside whatever transaction is open (no implicit COMMIT)."""
    statement = ""
    pieces = script.split(";")
    for piece in pieces[:-1]:
        statement += piece + ";"
        if sqlite3.complete_statement(statement):  # a ';' inside a string or a trigger body does not end it
            if statement.strip().rstrip(";").strip():
                conn.execute(statement)
            statement = ""
    statement += pieces[-1]
    if statement.strip():
        conn.execute(statement)  # the last statement without its ';', or a comment; SQLite rejects a fragment


def copy_database(source: str | Path, target: str | Path, *, pages: int = 256) -> str:
    """Copy a SQLite file with the online backup API, while others go on writing to it; the copy's
    ``PRAGMA integrity_check`` (``ok``).

    The copy is a consistent snapshot (a write between steps restarts the copy of what changed), in rollback
    journal mode so it is one self-contained file. Used for backups and for restoring one: ``target`` is
    overwritten page by page through SQLite, so a restore never leaves half a file behind.
    """
    if not Path(source).is_file():
        raise FileNotFoundError(f"no SQLite file at {source}")
    src = sqlite3.connect(str(source), timeout=30)  # not mode=ro: reading a WAL file may need its -shm made
    try:
        dst = sqlite3.connect(str(target), isolation_level=None, timeout=30)
        try:
            src.backup(dst, pages=pages)
            dst.execute("PRAGMA journal_mode=DELETE")
            return str(dst.execute("PRAGMA integrity_check").fetchone()[0])
        finally:
            dst.close()
    finally:
        src.close()
