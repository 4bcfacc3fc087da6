"""One small database interface over SQLite (default) and PostgreSQL (by URL), so one schema and one set of
queries serve both.

Queries are written once with ``?`` placeholders and portable SQL (``ON CONFLICT``, partial indexes,
``RETURNING``); the PostgreSQL side rewrites the placeholders. Each connection is used by one thread at a
time (a lock), and a transaction holds the lock, so a store can be shared by the loop and delivery threads.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from central.errors import StoreError, StoreMissing
from smileloop_core import sqlite

BUSY_TIMEOUT_MS = 10_000  # a write lock held longer than this is an outage: ingest backs off and holds its messages
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def is_postgres_url(target: str | Path) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


class Database:
    """The common part: a lock, nested transactions, dict rows."""

    dialect = ""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0

    # subclasses provide these three
    def _begin(self) -> None: ...
    def _end(self, commit: bool) -> None: ...
    def _run(self, sql: str, params: Sequence[Any]) -> tuple[list[dict[str, Any]], int]:
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """One atomic unit; nested calls join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self._begin()
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                self._end(False)
                raise
            self._depth = 0
            self._end(True)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""
        with self._lock:
            return self._run(sql, params)[1]

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return self._run(sql, params)[0]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement for many rows (PostgreSQL pipelines them: one round trip, not one per row)."""
        if rows:
            with self._lock:
                self._run_many(sql, rows)

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            self._run(sql, row)

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.one(sql, params)
        return next(iter(row.values())) if row else None

    def writable(self) -> bool:
        """True if a write transaction can start now (a cheap probe; nothing is written)."""
        raise NotImplementedError

    def is_outage(self, error: BaseException) -> bool:
        """The database being unavailable (locked, gone), as opposed to refusing one statement's data."""
        return isinstance(error, StoreError)

    def close(self) -> None: ...


class SqliteDatabase(Database):
    dialect = "sqlite"
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: str | Path, *, busy_timeout: float = BUSY_TIMEOUT_MS / 1000, create: bool = True) -> None:
        super().__init__()
        self.path = Path(path)
        self.busy_ms = int(busy_timeout * 1000)
        if not create and not self.path.is_file():
            raise StoreMissing(f"no central store at {self.path} (check --db; `smileloop central` or "
                               "`smileloop org load` creates one)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite.connect(self.path, synchronous="FULL", busy_timeout_ms=self.busy_ms)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open the SQLite database {self.path}: {e}") from None

    def _begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks between workers

    def _end(self, commit: bool) -> None:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT" if commit else "ROLLBACK")

    def writable(self) -> bool:
        with self._lock:
            if self._depth:
                return True
            self.conn.execute("PRAGMA busy_timeout=200")
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.execute("ROLLBACK")
                return True
            except sqlite3.Error:
                return False
            finally:
                self.conn.execute(f"PRAGMA busy_timeout={self.busy_ms}")

    def is_outage(self, error: BaseException) -> bool:
        return isinstance(error, StoreError | sqlite3.OperationalError)  # locked, busy, disk I/O, cannot open

    def _run(self, sql: str, params: Sequence[Any]) -> tuple[list[dict[str, Any]], int]:
        cur = self.conn.execute(sql, tuple(params))
        rows = [dict(r) for r in cur.fetchall()] if cur.description else []
        return rows, cur.rowcount

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, [tuple(r) for r in rows])

    def close(self) -> None:
        with self._lock:
            self.conn.close()


class PostgresDatabase(Database):
    """psycopg 3 in autocommit mode with explicit transactions; ``schema`` isolates a deployment (or a test)."""

    dialect = "postgresql"
    serial = "BIGSERIAL PRIMARY KEY"

    def __init__(self, url: str, schema: str | None = None, *, busy_timeout: float = BUSY_TIMEOUT_MS / 1000) -> None:
        super().__init__()
        self.lock_ms = int(busy_timeout * 1000)
        if schema is not None and not _IDENT.match(schema):
            raise StoreError(f"PostgreSQL schema {schema!r}: use lower-case letters, digits and _")
        self.schema = schema
        self.url = url
        self._tx: Any = None
        self.conn = self._connect()

    def _connect(self) -> Any:
        import psycopg
        from psycopg.rows import dict_row

        try:
            conn = psycopg.connect(self.url, autocommit=True, row_factory=dict_row, connect_timeout=10)
        except psycopg.OperationalError as e:
            raise StoreError(f"cannot connect to PostgreSQL: {str(e).strip().splitlines()[0]}") from None
        conn.execute(f"SET lock_timeout = {int(self.lock_ms)}")  # a lock held longer is an outage: back off
        if self.schema:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            conn.execute(f"SET search_path TO {self.schema}")
        return conn

    def _ensure(self) -> None:
        """A connection lost between transactions (server restart, failover) is opened again; one lost inside a
        transaction fails that transaction, and the caller's message comes again."""
        if self._depth == 0 and (self.conn.closed or self.conn.broken):
            self.conn = self._connect()

    def _begin(self) -> None:
        self._ensure()
        self._tx = self.conn.transaction()
        self._tx.__enter__()

    def _end(self, commit: bool) -> None:
        tx, self._tx = self._tx, None
        if commit:
            tx.__exit__(None, None, None)
        else:
            tx.__exit__(RuntimeError, RuntimeError("rollback"), None)

    def _run(self, sql: str, params: Sequence[Any]) -> tuple[list[dict[str, Any]], int]:
        self._ensure()
        cur = self.conn.execute(_pg_sql(sql), tuple(params))
        rows = [dict(r) for r in cur.fetchall()] if cur.description else []
        return rows, cur.rowcount

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._ensure()
        with self.conn.cursor() as cur:
            cur.executemany(_pg_sql(sql), [tuple(r) for r in rows])

    def writable(self) -> bool:
        with self._lock:
            if self._depth:
                return True
            try:
                self._ensure()
                self.conn.execute("SELECT 1")
                return True
            except Exception:
                return False

    def is_outage(self, error: BaseException) -> bool:
        import psycopg

        # OperationalError covers a lost or refused connection and LockNotAvailable (lock_timeout)
        return isinstance(error, StoreError | psycopg.OperationalError | psycopg.InterfaceError)

    def drop_schema(self) -> None:
        """Remove this store's schema and everything in it (tests)."""
        if self.schema:
            self.conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")

    def close(self) -> None:
        with self._lock:
            self.conn.close()


_PG_CACHE: dict[str, str] = {}


def _pg_sql(sql: str) -> str:
    """``?`` placeholders → ``%s`` (a literal ``%`` doubled); SQLite's ``[name]`` quoting → ``"name"``."""
    out = _PG_CACHE.get(sql)
    if out is None:
        out = re.sub(r"\[(\w+)\]", r'"\1"', sql.replace("%", "%%").replace("?", "%s"))
        _PG_CACHE[sql] = out
    return out


def open_database(target: str | Path, schema: str | None = None, *,
                  busy_timeout: float = BUSY_TIMEOUT_MS / 1000, create: bool = True) -> Database:
    """A SQLite file path, or a ``postgresql://`` URL. ``busy_timeout``: seconds a write waits for another
    writer's lock before it fails (SQLite ``busy_timeout``, PostgreSQL ``lock_timeout``)."""
    if is_postgres_url(target):
        return PostgresDatabase(str(target), schema=schema, busy_timeout=busy_timeout)
    return SqliteDatabase(target, busy_timeout=busy_timeout, create=create)
