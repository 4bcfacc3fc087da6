"""smileloop_core.sqlite: open with WAL, one write transaction with rollback, numbered migrations on ``_migrations``."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from smileloop_core.sqlite import applied, connect, migrate, transaction

ITEMS = ("001_items", "CREATE TABLE items (id TEXT PRIMARY KEY, n INTEGER NOT NULL)")


@pytest.fixture
def conn(tmp_path):
    c = connect(tmp_path / "t.db")
    migrate(c, [ITEMS])
    yield c
    c.close()


def ids(conn: sqlite3.Connection) -> list[str]:
    return [r["id"] for r in conn.execute("SELECT id FROM items ORDER BY id")]


def test_connect_sets_wal_synchronous_busy_timeout_and_foreign_keys(tmp_path):
    c = connect(tmp_path / "t.db", synchronous="FULL", busy_timeout_ms=1234, foreign_keys=True)
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert c.execute("PRAGMA busy_timeout").fetchone()[0] == 1234
    assert c.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert c.isolation_level is None  # autocommit: the transactions are ours
    c.close()
    with pytest.raises(ValueError, match="synchronous"):
        connect(tmp_path / "t.db", synchronous="SOMETIMES")  # type: ignore[arg-type]


def test_connect_refuses_a_file_that_is_not_a_database(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database at all, just some bytes" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        migrate(connect(bad), [ITEMS])


def test_transaction_commits_and_rolls_back_on_any_exception(conn):
    with transaction(conn) as c:
        c.execute("INSERT INTO items VALUES ('a', 1)")
    assert not conn.in_transaction
    with pytest.raises(KeyError), transaction(conn) as c:
        c.execute("INSERT INTO items VALUES ('b', 2)")
        raise KeyError("boom")
    assert not conn.in_transaction
    assert ids(conn) == ["a"]


def test_a_failed_commit_rolls_back_and_raises(tmp_path):
    c = connect(tmp_path / "t.db", foreign_keys=True)
    migrate(c, [("001", "CREATE TABLE p (id INTEGER PRIMARY KEY); "
                        "CREATE TABLE k (p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)")])
    with pytest.raises(sqlite3.IntegrityError), transaction(c):
        c.execute("INSERT INTO k VALUES (7)")  # checked at COMMIT only
    assert not c.in_transaction
    assert c.execute("SELECT count(*) FROM k").fetchone()[0] == 0


def test_nested_transaction_joins_the_outer_one(conn):
    with transaction(conn):
        conn.execute("INSERT INTO items VALUES ('a', 1)")
        with pytest.raises(RuntimeError), transaction(conn):
            conn.execute("INSERT INTO items VALUES ('b', 2)")
            raise RuntimeError("inner fails")
        with transaction(conn):
            conn.execute("INSERT INTO items VALUES ('c', 3)")
        other = sqlite3.connect(conn.execute("PRAGMA database_list").fetchone()[2])
        assert other.execute("SELECT count(*) FROM items").fetchone()[0] == 0, "nothing committed before the outer end"
        other.close()
    assert ids(conn) == ["a", "c"]  # the failed inner block undid only its own write
    with pytest.raises(RuntimeError), transaction(conn):
        with transaction(conn):
            conn.execute("INSERT INTO items VALUES ('d', 4)")
        raise RuntimeError("outer fails")
    assert ids(conn) == ["a", "c"]  # the outer failure undoes the inner block's work too


def test_begin_immediate_takes_the_write_lock_up_front(tmp_path, conn):
    other = connect(tmp_path / "t.db", busy_timeout_ms=0)
    with transaction(conn):
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        assert other.execute("SELECT count(*) FROM items").fetchone()[0] == 0  # readers are not blocked (WAL)
    other.close()


def test_lock_serialises_threads_sharing_a_connection(tmp_path):
    c = connect(tmp_path / "t.db", check_same_thread=False)
    migrate(c, [ITEMS])
    lock = threading.RLock()

    def writer(prefix: str) -> None:
        for i in range(50):
            with transaction(c, lock=lock):
                n = c.execute("SELECT count(*) FROM items").fetchone()[0]
                c.execute("INSERT INTO items VALUES (?, ?)", (f"{prefix}{i}", n))

    threads = [threading.Thread(target=writer, args=(p,)) for p in "xy"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r[0] for r in c.execute("SELECT n FROM items")) == list(range(100))
    c.close()


def test_migrations_apply_in_order_once_and_survive_reopening(tmp_path):
    steps = [ITEMS, ("002_more", "ALTER TABLE items ADD COLUMN note TEXT; CREATE INDEX items_n ON items(n);"),
             ("003_seed", lambda c: c.execute("INSERT INTO items (id, n, note) VALUES ('seed', 0, 'a;b')"))]
    c = connect(tmp_path / "t.db")
    assert migrate(c, steps[:2]) == ["001_items", "002_more"]
    assert migrate(c, steps) == ["003_seed"]
    assert migrate(c, steps) == []
    c.close()
    c = connect(tmp_path / "t.db")
    assert migrate(c, steps) == []
    assert applied(c) == ["001_items", "002_more", "003_seed"]
    assert [tuple(r) for r in c.execute("SELECT id, note FROM items")] == [("seed", "a;b")]
    c.close()


def test_a_script_with_a_trigger_and_a_trailing_comment(tmp_path):
    c = connect(tmp_path / "t.db")
    migrate(c, [ITEMS, ("002_trigger", """
        CREATE TABLE log (id TEXT);
        CREATE TRIGGER items_log AFTER INSERT ON items BEGIN
            INSERT INTO log VALUES (new.id);
            INSERT INTO log VALUES (new.id || ';again');
        END;
        -- the end""")])
    c.execute("INSERT INTO items VALUES ('a', 1)")
    assert [r[0] for r in c.execute("SELECT id FROM log")] == ["a", "a;again"]


def test_a_failing_migration_leaves_the_ones_before_and_raises(tmp_path):
    def broken(c: sqlite3.Connection) -> None:
        c.execute("CREATE TABLE half (x)")
        raise sqlite3.OperationalError("disk on fire")

    c = connect(tmp_path / "t.db")
    with pytest.raises(sqlite3.OperationalError, match="disk on fire"):
        migrate(c, [ITEMS, ("002_broken", broken)])
    assert applied(c) == ["001_items"]
    assert c.execute("SELECT 1 FROM sqlite_master WHERE name = 'half'").fetchone() is None
    with pytest.raises(ValueError, match="unique"):
        migrate(c, [ITEMS, ITEMS])


def test_files_migrated_by_the_old_per_store_code_open_unchanged(tmp_path):
    """The on-disk record is the ``_migrations`` table the stores always wrote: nothing is applied twice."""
    old = sqlite3.connect(tmp_path / "old.db")
    old.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    old.execute("CREATE TABLE items (id TEXT PRIMARY KEY, n INTEGER NOT NULL)")
    old.execute("INSERT INTO _migrations VALUES ('001_items', datetime('now'))")
    old.commit()
    old.close()
    c = connect(tmp_path / "old.db")
    assert migrate(c, [ITEMS, ("002_x", "CREATE TABLE x (y)")]) == ["002_x"]
    assert applied(c) == ["001_items", "002_x"]


def test_two_openers_racing_apply_each_migration_once(tmp_path):
    calls: list[str] = []

    def slow(c: sqlite3.Connection) -> None:
        calls.append(threading.current_thread().name)
        time.sleep(0.2)
        c.execute("CREATE TABLE slow (x)")

    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def opener() -> None:
        c = None
        try:  # everything inside: a failure is reported below, never a thread left waiting at the barrier
            c = connect(tmp_path / "race.db", busy_timeout_ms=5000)
            barrier.wait(timeout=30)
            migrate(c, [("001_slow", slow)])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
            barrier.abort()
        finally:
            if c is not None:
                c.close()

    threads = [threading.Thread(target=opener) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "an opener hung"
    assert errors == []
    assert len(calls) == 1
