"""What the console keeps about people in central's store: users (argon2 hashes, never passwords), sessions and
API tokens (SHA-256 of their secrets, never the secrets), and failed logins per source for the backoff.

Handed a :class:`central.store.CentralStore`, like :class:`central.store_fleet.PushLog`: only the console and
``smileloop users`` use it. The rules (hashing, lockout, expiry) live in :mod:`central.accounts`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from central.store import CentralStore
from smileloop_core.clock import utc_iso


@dataclass(frozen=True)
class UserRow:
    name: str
    role: str
    sites: tuple[str, ...]
    password_hash: str
    language: str | None
    disabled: bool
    failed: int
    locked_until: str | None


@dataclass(frozen=True)
class SessionRow:
    user_name: str
    csrf: str
    created_at: str
    last_seen: str
    expires_at: str


class AccountStore:
    """``AccountStore(store)``: the ``users``, ``sessions``, ``api_tokens`` and ``login_failures`` tables."""

    def __init__(self, store: CentralStore) -> None:
        self.store = store
        self.db = store.db

    # --- users ------------------------------------------------------------------------------------
    def put_user(self, name: str, role: str, sites: tuple[str, ...], password_hash: str, language: str | None,
                 at: datetime) -> bool:
        """Create the user or replace role, sites, hash and language; True if created. A new password clears the
        lockout."""
        with self.store.transaction():
            exists = self.db.one("SELECT name FROM users WHERE name = ?", (name,)) is not None
            if exists:
                self.db.execute("UPDATE users SET role = ?, sites = ?, password_hash = ?, language = ?, failed = 0, "
                                "locked_until = NULL, disabled = 0 WHERE name = ?",
                                (role, json.dumps(list(sites)), password_hash, language, name))
            else:
                self.db.execute("INSERT INTO users (name, role, sites, password_hash, language, created_at) "
                                "VALUES (?,?,?,?,?,?)", (name, role, json.dumps(list(sites)), password_hash, language,
                                                         utc_iso(at)))
        return not exists

    def user(self, name: str) -> UserRow | None:
        row = self.db.one("SELECT * FROM users WHERE name = ?", (name,))
        return _user(row) if row else None

    def users(self) -> list[UserRow]:
        return [_user(r) for r in self.db.query("SELECT * FROM users ORDER BY name")]

    def set_language(self, name: str, language: str) -> None:
        self.db.execute("UPDATE users SET language = ? WHERE name = ?", (language, name))

    def set_password_hash(self, name: str, password_hash: str) -> None:
        """A rehash with newer argon2 parameters after a good login."""
        self.db.execute("UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, name))

    def disable(self, name: str) -> bool:
        """The user can no longer log in; their sessions and tokens end now."""
        with self.store.transaction():
            changed = self.db.execute("UPDATE users SET disabled = 1 WHERE name = ?", (name,))
            self.db.execute("DELETE FROM sessions WHERE user_name = ?", (name,))
            self.db.execute("UPDATE api_tokens SET revoked_at = CURRENT_TIMESTAMP WHERE user_name = ? "
                            "AND revoked_at IS NULL", (name,))
        return bool(changed)

    def user_failed(self, name: str, failed: int, locked_until: datetime | None) -> None:
        self.db.execute("UPDATE users SET failed = ?, locked_until = ? WHERE name = ?",
                        (failed, utc_iso(locked_until) if locked_until else None, name))

    def user_logged_in(self, name: str, at: datetime) -> None:
        self.db.execute("UPDATE users SET failed = 0, locked_until = NULL, last_login = ? WHERE name = ?",
                        (utc_iso(at), name))

    # --- failed logins per source ---------------------------------------------------------------------
    def source_failures(self, source: str) -> tuple[int, str | None]:
        row = self.db.one("SELECT failed, locked_until FROM login_failures WHERE source = ?", (source,))
        return (int(row["failed"]), row["locked_until"]) if row else (0, None)

    def source_failed(self, source: str, failed: int, locked_until: datetime | None, at: datetime) -> None:
        until = utc_iso(locked_until) if locked_until else None
        self.db.execute("INSERT INTO login_failures (source, failed, last_at, locked_until) VALUES (?,?,?,?) "
                        "ON CONFLICT (source) DO UPDATE SET failed = excluded.failed, last_at = excluded.last_at, "
                        "locked_until = excluded.locked_until", (source, failed, utc_iso(at), until))

    def source_cleared(self, source: str) -> None:
        self.db.execute("DELETE FROM login_failures WHERE source = ?", (source,))

    # --- sessions ---------------------------------------------------------------------------------
    def add_session(self, id_hash: str, user: str, csrf: str, at: datetime, expires: datetime) -> None:
        self.db.execute("INSERT INTO sessions (id_hash, user_name, csrf, created_at, last_seen, expires_at) "
                        "VALUES (?,?,?,?,?,?)", (id_hash, user, csrf, utc_iso(at), utc_iso(at), utc_iso(expires)))

    def session(self, id_hash: str) -> SessionRow | None:
        row = self.db.one("SELECT user_name, csrf, created_at, last_seen, expires_at FROM sessions WHERE id_hash = ?",
                          (id_hash,))
        return SessionRow(**row) if row else None

    def touch_session(self, id_hash: str, at: datetime) -> None:
        self.db.execute("UPDATE sessions SET last_seen = ? WHERE id_hash = ?", (utc_iso(at), id_hash))

    def end_session(self, id_hash: str) -> None:
        self.db.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))

    def end_expired_sessions(self, before: datetime) -> int:
        return self.db.execute("DELETE FROM sessions WHERE expires_at < ?", (utc_iso(before),))

    # --- API tokens -------------------------------------------------------------------------------
    def add_token(self, selector: str, user: str, secret_hash: str, label: str | None, at: datetime) -> None:
        self.db.execute("INSERT INTO api_tokens (selector, user_name, secret_hash, label, created_at) "
                        "VALUES (?,?,?,?,?)", (selector, user, secret_hash, label, utc_iso(at)))

    def token(self, selector: str) -> tuple[str, str] | None:
        """(user name, secret hash) of a live token."""
        row = self.db.one("SELECT user_name, secret_hash FROM api_tokens WHERE selector = ? AND revoked_at IS NULL",
                          (selector,))
        return (row["user_name"], row["secret_hash"]) if row else None

    def token_used(self, selector: str, at: datetime) -> None:
        self.db.execute("UPDATE api_tokens SET last_used = ? WHERE selector = ?", (utc_iso(at), selector))

    def revoke_tokens(self, user: str, at: datetime) -> int:
        return self.db.execute("UPDATE api_tokens SET revoked_at = ? WHERE user_name = ? AND revoked_at IS NULL",
                               (utc_iso(at), user))


def _user(row: dict[str, Any]) -> UserRow:
    return UserRow(name=row["name"], role=row["role"], sites=tuple(json.loads(row["sites"] or "[]")),
                   password_hash=row["password_hash"], language=row["language"], disabled=bool(row["disabled"]),
                   failed=int(row["failed"]), locked_until=row["locked_until"])
