"""What is done to a device store from beside it: a visitor's details erased on central's request, a backup,
and a restore onto a new SD card (docs/PRIVACY.md).

Each opens its own connection to the file, as the kiosk and the sync agent do (WAL: they go on meanwhile),
so :mod:`device.store` stays the tap path and the outbox.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from device.errors import StoreError
from device.store import DeviceStore
from smileloop_core.sqlite import connect, copy_database, transaction


def erase_details(path: str | Path, rating_ids: Sequence[str]) -> int:
    """Empty ``contact`` (and its ``consent``) and ``comment`` of these ratings (those the device still holds;
    their outbox state and rev are left alone); how many held either. Erasing twice erases nothing more."""
    ids = list(dict.fromkeys(rating_ids))
    if not ids:
        return 0
    try:
        conn = connect(path, synchronous="FULL")
    except sqlite3.Error as e:
        raise StoreError(f"could not open {path} to erase: {e}") from e
    try:
        with transaction(conn):
            n = 0
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                n += conn.execute(f"UPDATE ratings SET contact = NULL, consent = NULL, comment = NULL WHERE id IN "
                                  f"({','.join('?' * len(chunk))}) AND (contact IS NOT NULL OR comment IS NOT NULL)",
                                  chunk).rowcount
            return n
    except sqlite3.Error as e:
        raise StoreError(f"could not erase in {path}: {e}") from e
    finally:
        conn.close()


def backup_store(path: str | Path, out: str | Path) -> str:
    """A consistent copy of the device store while the kiosk and the agent run; its integrity check."""
    if not Path(path).is_file():
        raise StoreError(f"no device store at {path}")
    try:
        return copy_database(path, out)
    except (OSError, sqlite3.Error) as e:
        raise StoreError(f"could not back up {path} to {out}: {e}") from e


def restore_store(backup: str | Path, path: str | Path) -> str:
    """The device store replaced by ``backup`` (stop the kiosk and the sync agent first), then opened once so
    its migrations are current; its integrity check."""
    try:
        if copy_database(backup, out := Path(path)) != "ok":
            raise StoreError(f"{backup} is damaged; {path} was overwritten with it")
    except (OSError, sqlite3.Error) as e:
        raise StoreError(f"could not restore {backup} to {path}: {e}") from e
    store = DeviceStore(out)
    try:
        return store.integrity_check()
    finally:
        store.close()
