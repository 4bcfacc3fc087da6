"""What a backup or a restore checks a central store with: its tables and their rows, SQLite's integrity."""

from __future__ import annotations

from central.store import CentralStore


def table_counts(store: CentralStore) -> dict[str, int]:
    """Rows per table of the store (its own schema on PostgreSQL)."""
    if store.dialect == "sqlite":
        names = [r["name"] for r in store.db.query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    else:
        names = [r["table_name"] for r in store.db.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_type = 'BASE TABLE' ORDER BY table_name")]
    return {name: store.count(name) for name in names}


def integrity(store: CentralStore) -> str:
    """``PRAGMA integrity_check`` of a SQLite store (``ok``, or the first problem); ``ok`` on PostgreSQL, which
    checks its own pages."""
    return str(store.db.scalar("PRAGMA integrity_check")) if store.dialect == "sqlite" else "ok"
