"""Backups of central's store and of a device store, and restoring them (docs/PRIVACY.md, "Backups").

SQLite: the online backup API copies a consistent snapshot while central goes on ingesting (a write between two
steps makes it copy what changed again), then checks the copy (``PRAGMA integrity_check``). PostgreSQL:
``pg_dump`` in its custom format — one snapshot transaction, so everything committed before it began and
nothing half — restored with ``pg_restore``. The password of a ``postgresql://`` URL goes to them in
``PGPASSWORD``, never on their command line.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from central.db import is_postgres_url
from central.errors import CentralError
from central.store import CentralStore
from central.store_backup import integrity, table_counts
from device.store_tools import backup_store, restore_store
from smileloop_core.sqlite import copy_database

__all__ = ["BackupError", "BackupResult", "backup_central", "backup_device", "restore_central", "restore_device"]


class BackupError(CentralError, RuntimeError):
    """A backup or restore that could not be made; the message says why (nothing was overwritten unless said)."""


@dataclass(frozen=True)
class BackupResult:
    """A backup made or restored: what, where, the integrity check, and (after a restore) rows per table."""

    kind: str  # "sqlite", "postgresql" or "device"
    path: str
    integrity: str = "ok"
    bytes: int = 0
    tables: dict[str, int] = field(default_factory=dict)


def backup_central(target: str | Path, out: Path, *, schema: str | None = None) -> BackupResult:
    """Back up the store at ``target`` (a SQLite file or a ``postgresql://`` URL) to ``out``."""
    if is_postgres_url(target):
        args = ["--format=custom", "--no-owner", f"--file={out}"] + ([f"--schema={schema}"] if schema else [])
        _run_pg("pg_dump", str(target), args)
        out.chmod(0o600)
        return BackupResult("postgresql", str(out), "ok", out.stat().st_size)
    if not Path(target).is_file():
        raise BackupError(f"no central store at {target}")
    out.unlink(missing_ok=True)
    try:
        check = copy_database(target, out)
    except (OSError, sqlite3.Error) as e:
        raise BackupError(f"could not back up {target}: {e}") from None
    if check != "ok":
        raise BackupError(f"the copy {out} fails its integrity check: {check}")
    out.chmod(0o600)
    return BackupResult("sqlite", str(out), check, out.stat().st_size)


def restore_central(target: str | Path, source: Path, *, schema: str | None = None,
                    force: bool = False) -> BackupResult:
    """Restore a backup over the store at ``target`` (central stopped first); refuses to overwrite an existing
    SQLite file unless ``force``. PostgreSQL: the dumped objects are dropped and made again."""
    if not source.is_file():
        raise BackupError(f"no backup at {source}")
    if is_postgres_url(target):
        _run_pg("pg_restore", str(target), ["--clean", "--if-exists", "--no-owner", "--exit-on-error", str(source)])
    else:
        if Path(target).exists() and not force:
            raise BackupError(f"{target} exists; give --force to overwrite it with {source}")
        try:
            check = copy_database(source, target)
        except (OSError, sqlite3.Error) as e:
            raise BackupError(f"could not restore {source} to {target}: {e}") from None
        if check != "ok":
            raise BackupError(f"{target} restored from {source} fails its integrity check: {check}")
    store = CentralStore(target, schema=schema, create=False)
    try:
        return BackupResult(store.dialect, str(target), integrity(store), source.stat().st_size, table_counts(store))
    finally:
        store.close()


def backup_device(store_path: Path, out: Path) -> BackupResult:
    """A copy of a kiosk's store (while it runs), e.g. before its SD card is replaced."""
    out.unlink(missing_ok=True)
    check = backup_store(store_path, out)
    if check != "ok":
        raise BackupError(f"the copy {out} fails its integrity check: {check}")
    out.chmod(0o600)
    return BackupResult("device", str(out), check, out.stat().st_size)


def restore_device(store_path: Path, source: Path, *, force: bool = False) -> BackupResult:
    """The kiosk's store made from a backup (kiosk and sync agent stopped)."""
    if not source.is_file():
        raise BackupError(f"no backup at {source}")
    if store_path.exists() and not force:
        raise BackupError(f"{store_path} exists; give --force to overwrite it with {source}")
    return BackupResult("device", str(store_path), restore_store(source, store_path), source.stat().st_size)


def _run_pg(tool: str, url: str, args: list[str]) -> None:
    exe = shutil.which(tool)
    if exe is None:
        raise BackupError(f"{tool} is not installed (Debian: apt-get install postgresql-client)")
    parts = urlsplit(url)
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = parts.password
        host = parts.hostname or ""
        netloc = f"{parts.username}@{host}" if parts.username else host
        url = urlunsplit(parts._replace(netloc=netloc + (f":{parts.port}" if parts.port else "")))
    try:
        done = subprocess.run([exe, f"--dbname={url}", *args], env=env, capture_output=True, text=True,
                              timeout=3600, check=False)
    except subprocess.TimeoutExpired:
        raise BackupError(f"{tool} took more than an hour") from None
    if done.returncode != 0:
        problem = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise BackupError(f"{tool} failed (exit {done.returncode}): {problem}")
