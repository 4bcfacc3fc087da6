"""Console accounts: who may log in, what they may see, and how a login, a session and an API token are checked.

- Passwords are hashed with argon2id (argon2-cffi); a hash with older parameters is replaced after a good login.
- A failed login counts against the user and against the source address. From the fifth failure in a row the
  account (or address) is locked for 30 s, doubling each time up to 15 min; a good login clears the count.
  A name that does not exist costs the same argon2 work, so timing does not tell names apart.
- A session is a random cookie value; the store keeps its SHA-256 only. It ends after 12 h unused or 14 days.
- An API token is ``slt_<selector>_<secret>``; the store keeps the selector and the SHA-256 of the secret.

Roles: an ``admin`` sees and does everything; a ``manager`` sees and acts on their sites only; a ``viewer``
reads (their sites, or all when none are given) and changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from central.errors import AccessDenied, AccountError, LoginRefused
from central.store import CentralStore
from central.store_accounts import AccountStore, UserRow
from smileloop_core.clock import Clock, SystemClock, parse_utc
from smileloop_core.ids import id_problem

ROLES = ("admin", "manager", "viewer")
NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte "password" is an attack, not a password
FREE_FAILURES = 4  # the fifth failure in a row locks
FIRST_LOCK = 30.0
MAX_LOCK = 900.0
SOURCE_FREE_FAILURES = 19  # one address guessing many names
SESSION_IDLE = timedelta(hours=12)
SESSION_MAX = timedelta(days=14)
# argon2id with argon2-cffi's defaults (RFC 9106's second recommendation: 64 MiB, 3 passes). Tests swap in a
# cheaper hasher (tests/console/conftest.py); one test checks the real one's parameters.
HASHER = PasswordHasher()
_dummies: dict[int, str] = {}


def _dummy() -> str:
    """A hash of nobody's password, made with the current hasher: checked when a name is unknown."""
    key = id(HASHER)
    if key not in _dummies:
        _dummies[key] = HASHER.hash("not a password of anyone's")
    return _dummies[key]


@dataclass(frozen=True)
class User:
    """Who is logged in (or whose token is used), and what that allows."""

    name: str
    role: str
    sites: tuple[str, ...]  # empty: every site (an admin; a viewer of all)
    language: str | None = None

    @property
    def all_sites(self) -> bool:
        return self.role == "admin" or not self.sites

    def sees(self, site: str | None) -> bool:
        return self.all_sites or (site is not None and site in self.sites)

    def may_act(self, site: str | None) -> bool:
        """Acknowledge, assign, resolve, reopen an alert at ``site``."""
        return self.role == "admin" or (self.role == "manager" and self.sees(site))

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def scope(self) -> tuple[str, ...] | None:
        """The sites a query is limited to; None: all."""
        return None if self.all_sites else self.sites

    def require_site(self, site: str | None) -> None:
        if not self.sees(site):  # the message does not name the site: an id alone tells nothing of its owner
            raise AccessDenied(f"{self.name} may not see this: it belongs to a site outside theirs")


@dataclass(frozen=True)
class Session:
    """A new session: the cookie value (give it to the browser, never store it) and its CSRF token."""

    cookie: str
    csrf: str
    user: User
    expires_at: datetime


class Accounts:
    """``Accounts(store, clock=...)``: create users and tokens, check logins, sessions and tokens."""

    def __init__(self, store: CentralStore, *, clock: Clock | None = None) -> None:
        self.rows = AccountStore(store)
        self.clock = clock or SystemClock()

    # --- managing --------------------------------------------------------------------------------
    def add_user(self, name: str, role: str, password: str, *, sites: tuple[str, ...] = (),
                 language: str | None = None) -> bool:
        """Create or update a user; True if created. The message of an :class:`AccountError` names what is wrong."""
        check_name(name)
        if role not in ROLES:
            raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
        for site in sites:
            problem = id_problem(site, "site")
            if problem:
                raise AccountError(problem)
        if role == "manager" and not sites:
            raise AccountError("a manager needs at least one --site (an admin sees every site)")
        if role == "admin" and sites:
            raise AccountError("an admin sees every site; give --site to a manager or a viewer")
        check_password(password)
        return self.rows.put_user(name, role, tuple(dict.fromkeys(sites)), HASHER.hash(password), language,
                                  self.clock.now())

    def users(self) -> list[User]:
        return [_user(r) for r in self.rows.users()]

    def user(self, name: str) -> User | None:
        row = self.rows.user(name)
        return _user(row) if row and not row.disabled else None

    def new_token(self, name: str, label: str | None = None) -> str:
        """A new API token for ``name``; shown once, only its hash is kept."""
        if self.user(name) is None:
            raise AccountError(f"no active user {name!r}; add one with: smileloop users add {name} --role …")
        selector, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        self.rows.add_token(selector, name, _sha(secret), label, self.clock.now())
        return f"slt_{selector}_{secret}"

    def set_language(self, user: User, language: str) -> User:
        self.rows.set_language(user.name, language)
        return User(user.name, user.role, user.sites, language)

    # --- checking --------------------------------------------------------------------------------
    def login(self, name: str, password: str, source: str) -> Session:
        """A new session for a good name and password; :class:`LoginRefused` otherwise (same message for a wrong
        name or a wrong password; ``retry_after`` > 0 while locked)."""
        now = self.clock.now()
        source = source[:64] or "unknown"
        failed, until = self.rows.source_failures(source)
        _refuse_if_locked(until, now, "too many failed logins from this address")
        row = self.rows.user(name) if NAME.fullmatch(name or "") else None
        if row is not None:
            _refuse_if_locked(row.locked_until, now, "too many failed logins for this account")
        good = _verify(row.password_hash if row else _dummy(), password[:MAX_PASSWORD]) and row is not None
        if not good or row is None or row.disabled:
            failed += 1
            self.rows.source_failed(source, failed, _lock_until(now, failed, SOURCE_FREE_FAILURES), now)
            if row is not None:
                self.rows.user_failed(row.name, row.failed + 1, _lock_until(now, row.failed + 1, FREE_FAILURES))
            raise LoginRefused("wrong user name or password")
        if HASHER.check_needs_rehash(row.password_hash):
            self.rows.set_password_hash(row.name, HASHER.hash(password))
        self.rows.user_logged_in(row.name, now)
        self.rows.source_cleared(source)
        cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = now + SESSION_MAX
        self.rows.add_session(_sha(cookie), row.name, csrf, now, expires)
        return Session(cookie, csrf, _user(row), expires)

    def session(self, cookie: str | None) -> tuple[User, str] | None:
        """The user and CSRF token of a live session, or None (expired, ended, unknown, user disabled)."""
        if not cookie or len(cookie) > 128:
            return None
        now = self.clock.now()
        key = _sha(cookie)
        row = self.rows.session(key)
        if row is None:
            return None
        if parse_utc(row.expires_at) <= now or parse_utc(row.last_seen) + SESSION_IDLE <= now:
            self.rows.end_session(key)
            return None
        user = self.user(row.user_name)
        if user is None:
            return None
        if now - parse_utc(row.last_seen) > timedelta(minutes=1):  # one write a minute, not one per request
            self.rows.touch_session(key, now)
        return user, row.csrf

    def logout(self, cookie: str | None) -> None:
        if cookie:
            self.rows.end_session(_sha(cookie))

    def token_user(self, token: str) -> User:
        """The user of a bearer token; :class:`AccessDenied` if it is malformed, unknown or revoked."""
        parts = token.split("_", 2) if token.startswith("slt_") and len(token) < 200 else []
        found = self.rows.token(parts[1]) if len(parts) == 3 else None
        if found is None or not hmac.compare_digest(found[1], _sha(parts[2])):
            raise AccessDenied("unknown or revoked API token")
        user = self.user(found[0])
        if user is None:
            raise AccessDenied("the token's user is disabled")
        self.rows.token_used(parts[1], self.clock.now())
        return user


def check_name(name: str) -> None:
    if not NAME.fullmatch(name or ""):
        raise AccountError(f"user name {name!r}: use 1–64 lower-case letters, digits and . _ @ - (starting with a "
                           "letter or digit)")


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password is too short: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"the password is too long: at most {MAX_PASSWORD} characters")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _lock_until(now: datetime, failed: int, free: int) -> datetime | None:
    if failed <= free:
        return None
    return now + timedelta(seconds=min(MAX_LOCK, FIRST_LOCK * 2 ** min(failed - free - 1, 10)))


def _refuse_if_locked(until: str | None, now: datetime, why: str) -> None:
    if until and parse_utc(until) > now:
        wait = (parse_utc(until) - now).total_seconds()
        raise LoginRefused(f"{why}; try again in {int(wait) + 1} s", retry_after=wait)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _user(row: UserRow) -> User:
    return User(row.name, row.role, row.sites, row.language)
