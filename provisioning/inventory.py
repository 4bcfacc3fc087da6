"""The staff inventory: sites, locations, devices, broker accounts and claim codes, in one SQLite file.

It holds password *hashes* only (the broker's format), and claim codes only as a slow salted hash
(:mod:`provisioning.codes`): a copied inventory file does not let anyone connect as a device, nor claim one.
The CA key lives beside the broker files instead (optionally encrypted, docs/SECURITY.md).

Opening, writing and migrating go through :mod:`smileloop_core.sqlite`: every write is one ``BEGIN IMMEDIATE``
transaction, rolled back whole on any error.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from provisioning.codes import hash_code, selector, verify_code
from provisioning.errors import AlreadyExists, ClaimRefused, InvalidInput, NotFound
from smileloop_core.clock import Clock, SystemClock, parse_utc, utc_iso
from smileloop_core.ids import id_problem
from smileloop_core.scales import SCALES
from smileloop_core.sqlite import Migration, connect, migrate, transaction

RESERVED_USERNAMES = {"central", "claim", "provisioner"}

NEW, ACTIVE, REVOKED = "new", "active", "revoked"  # new: waiting for its claim code or bundle


def check_ident(value: str, what: str) -> str:
    """An identifier that is safe in a topic, a username and a line of the broker's files, or
    :class:`InvalidInput` naming ``what`` (:func:`smileloop_core.ids.id_problem`: the whole string, no newline)."""
    problem = id_problem(value, what)
    if problem is not None:
        raise InvalidInput(problem)
    return value


@dataclass(frozen=True)
class DeviceSpec:
    """What staff choose for a device; everything else has the defaults of docs/PROTOCOL.md."""

    site: str
    location: str
    device_id: str | None = None
    scale: str = "smiley4"
    question: dict[str, str] = field(default_factory=lambda: {"en": "How was your visit today?"})
    languages: tuple[str, ...] = ("en",)
    hours: dict[str, Any] = field(default_factory=dict)  # weekday → "08:00-20:00" | "closed" | [spans]

    def __post_init__(self) -> None:
        check_ident(self.site, "site")
        check_ident(self.location, "location")
        if self.device_id is not None:
            check_ident(self.device_id, "device id")
            if self.device_id in RESERVED_USERNAMES:
                raise InvalidInput(f"device id {self.device_id!r} is reserved for a broker account")
        if self.scale not in SCALES:
            raise InvalidInput(f"scale {self.scale!r} is not one of {', '.join(SCALES)}")
        if not self.languages:
            raise InvalidInput("languages: at least one language is needed")


@dataclass(frozen=True)
class Device:
    device_id: str
    site: str
    location: str
    state: str
    scale: str
    question: dict[str, str]
    languages: tuple[str, ...]
    hours: dict[str, Any]
    timezone: str
    created_at: str
    credentials_at: str | None
    revoked_at: str | None
    last_seen: str | None
    last_state: str | None
    cert_serial: str | None

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["id"] = d.pop("device_id")
        d["languages"] = list(self.languages)
        return d


def _m001_inventory(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE sites (id TEXT PRIMARY KEY, name TEXT, timezone TEXT NOT NULL, created_at TEXT)")
    db.execute("CREATE TABLE locations (site TEXT NOT NULL REFERENCES sites(id), id TEXT NOT NULL, name TEXT, "
               "created_at TEXT, PRIMARY KEY (site, id))")
    db.execute("""
        CREATE TABLE devices (
            id TEXT PRIMARY KEY, site TEXT NOT NULL, location TEXT NOT NULL,
            state TEXT NOT NULL, scale TEXT NOT NULL, question TEXT NOT NULL, languages TEXT NOT NULL,
            hours TEXT NOT NULL, password_hash TEXT, cert_serial TEXT,
            created_at TEXT NOT NULL, credentials_at TEXT, revoked_at TEXT, last_seen TEXT, last_state TEXT,
            FOREIGN KEY (site, location) REFERENCES locations(site, id))""")
    db.execute("CREATE TABLE accounts (username TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL, "
               "updated_at TEXT NOT NULL)")
    db.execute("CREATE TABLE claims (code_id TEXT PRIMARY KEY, device_id TEXT NOT NULL REFERENCES devices(id), "
               "created_at TEXT NOT NULL, expires_at TEXT NOT NULL, used_at TEXT)")
    db.execute("CREATE TABLE revoked_certs (serial TEXT PRIMARY KEY, device_id TEXT, revoked_at TEXT NOT NULL)")
    db.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


INVALIDATED = ("made before claim codes were stored as salted hashes (docs/SECURITY.md); it no longer works: "
               "make a new code with 'smileloop provision claim new DEVICE'")


def _m002_claim_hashes(db: sqlite3.Connection) -> None:
    """Claim codes keyed by a selector and an scrypt verifier; old rows (an unsalted id) are used up."""
    from datetime import UTC
    from datetime import datetime as _dt

    now = utc_iso(_dt.now(UTC))
    db.execute("""
        CREATE TABLE claim_codes (
            id INTEGER PRIMARY KEY, selector TEXT, verifier TEXT, device_id TEXT NOT NULL REFERENCES devices(id),
            created_at TEXT NOT NULL, expires_at TEXT NOT NULL, used_at TEXT, note TEXT)""")
    db.execute("INSERT INTO claim_codes (device_id, created_at, expires_at, used_at, note) "
               "SELECT device_id, created_at, expires_at, coalesce(used_at, ?), "
               "CASE WHEN used_at IS NULL THEN ? END FROM claims", (now, INVALIDATED))
    db.execute("DROP TABLE claims")
    db.execute("ALTER TABLE claim_codes RENAME TO claims")
    db.execute("CREATE INDEX claims_selector ON claims (selector)")


MIGRATIONS: list[Migration] = [("001_inventory", _m001_inventory), ("002_claim_hashes", _m002_claim_hashes)]


class Inventory:
    """``Inventory("inventory.db")``: every staff action is one short transaction on this file."""

    def __init__(self, path: str | Path, *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.clock = clock or SystemClock()
        self._lock = threading.RLock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():  # password hashes and claim code ids: for staff eyes only
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        try:
            self._conn = connect(self.path, synchronous="FULL", busy_timeout_ms=10_000, foreign_keys=True)
        except sqlite3.DatabaseError as e:
            raise InvalidInput(f"{self.path} is not a smileloop inventory: {e}") from None
        try:
            migrate(self._conn, MIGRATIONS, lock=self._lock)
        except sqlite3.DatabaseError as e:
            self._conn.close()
            raise InvalidInput(f"{self.path} is not a smileloop inventory: {e}") from None
        self.db = sqlite_utils.Database(self._conn)

    # --- plumbing -----------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One staff action: ``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any error (a refused claim too)."""
        with transaction(self._conn, lock=self._lock) as c:
            yield c

    def _now(self) -> str:
        return utc_iso(self.clock.now())

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- settings -----------------------------------------------------------------------------
    def setting(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_settings(self, **values: str) -> None:
        with self._write() as c:
            c.executemany("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", list(values.items()))

    # --- sites and locations ------------------------------------------------------------------
    def add_site(self, site: str, *, name: str | None = None, timezone: str = "UTC") -> None:
        check_ident(site, "site")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(timezone)
        except Exception:
            raise InvalidInput(f"timezone {timezone!r} is not a known IANA time zone (e.g. Europe/Stockholm)") from None
        with self._write() as c:
            if c.execute("SELECT 1 FROM sites WHERE id = ?", (site,)).fetchone():
                raise AlreadyExists(f"site {site!r} already exists")
            c.execute("INSERT INTO sites VALUES (?, ?, ?, ?)", (site, name, timezone, self._now()))

    def add_location(self, site: str, location: str, *, name: str | None = None) -> None:
        check_ident(location, "location")
        with self._write() as c:
            self._need_site(c, site)
            if c.execute("SELECT 1 FROM locations WHERE site = ? AND id = ?", (site, location)).fetchone():
                raise AlreadyExists(f"location {location!r} already exists at site {site!r}")
            c.execute("INSERT INTO locations VALUES (?, ?, ?, ?)", (site, location, name, self._now()))

    def _need_site(self, c: sqlite3.Connection, site: str) -> sqlite3.Row:
        row: sqlite3.Row | None = c.execute("SELECT * FROM sites WHERE id = ?", (site,)).fetchone()
        if row is None:
            known = [r[0] for r in c.execute("SELECT id FROM sites ORDER BY id")]
            raise NotFound(f"site {site!r} is not in the inventory (known: {', '.join(known) or 'none'}; "
                           "add it with 'smileloop provision site add')")
        return row

    def sites(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._conn.execute(
            "SELECT s.*, (SELECT count(*) FROM locations l WHERE l.site = s.id) AS locations, "
            "(SELECT count(*) FROM devices d WHERE d.site = s.id AND d.state != 'revoked') AS devices "
            "FROM sites s ORDER BY s.id")]

    def locations(self, site: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM locations", ()  # type: tuple[str, tuple[str, ...]]
        if site is not None:
            sql, args = sql + " WHERE site = ?", (site,)
        return [dict(r) for r in self._conn.execute(sql + " ORDER BY site, id", args)]

    # --- devices ------------------------------------------------------------------------------
    def create_device(self, spec: DeviceSpec) -> Device:
        """Register a device in state ``new`` (no credentials yet); its id is made up if none was given."""
        with self._write() as c:
            self._need_site(c, spec.site)
            if not c.execute("SELECT 1 FROM locations WHERE site = ? AND id = ?",
                             (spec.site, spec.location)).fetchone():
                known = [r[0] for r in c.execute("SELECT id FROM locations WHERE site = ? ORDER BY id", (spec.site,))]
                raise NotFound(f"location {spec.location!r} is not at site {spec.site!r} (known: "
                               f"{', '.join(known) or 'none'}; add it with 'smileloop provision location add')")
            device_id = spec.device_id or self._next_id(c, spec.site, spec.location)
            if c.execute("SELECT 1 FROM devices WHERE id = ?", (device_id,)).fetchone():
                raise AlreadyExists(f"device {device_id!r} already exists (device ids are broker usernames, "
                                    "unique across all sites)")
            c.execute("INSERT INTO devices (id, site, location, state, scale, question, languages, hours, "
                      "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (device_id, spec.site, spec.location, NEW, spec.scale, json.dumps(spec.question),
                       json.dumps(list(spec.languages)), json.dumps(spec.hours), self._now()))
        return self.device(device_id)

    def _next_id(self, c: sqlite3.Connection, site: str, location: str) -> str:
        for n in range(1, 10_000):
            candidate = f"{site}-{location}-{n}"
            if not c.execute("SELECT 1 FROM devices WHERE id = ?", (candidate,)).fetchone():
                return check_ident(candidate, "generated device id (pass --id)")
        raise InvalidInput("no free device id; pass --id")

    def device(self, device_id: str) -> Device:
        row = self._conn.execute("SELECT d.*, s.timezone FROM devices d JOIN sites s ON s.id = d.site "
                                 "WHERE d.id = ?", (device_id,)).fetchone()
        if row is None:
            raise NotFound(f"device {device_id!r} is not in the inventory ('smileloop provision device list')")
        return _device(row)

    def devices(self, *, site: str | None = None, include_revoked: bool = True) -> list[Device]:
        sql = "SELECT d.*, s.timezone FROM devices d JOIN sites s ON s.id = d.site WHERE 1=1"
        args: list[str] = []
        if site is not None:
            sql += " AND d.site = ?"
            args.append(site)
        if not include_revoked:
            sql += " AND d.state != 'revoked'"
        return [_device(r) for r in self._conn.execute(sql + " ORDER BY d.site, d.location, d.id", args)]

    def set_credentials(self, device_id: str, password_hash: str, cert_serial: int | None) -> Device:
        """New credentials replace the old ones at once (the old certificate goes on the revocation list)."""
        now = self._now()
        with self._write() as c:
            row = c.execute("SELECT state, cert_serial FROM devices WHERE id = ?", (device_id,)).fetchone()
            if row is None:
                raise NotFound(f"device {device_id!r} is not in the inventory")
            if row["state"] == REVOKED:
                raise InvalidInput(f"device {device_id!r} is revoked; create a new device instead")
            if row["cert_serial"]:
                c.execute("INSERT OR IGNORE INTO revoked_certs VALUES (?, ?, ?)", (row["cert_serial"], device_id, now))
            c.execute("UPDATE devices SET state = ?, password_hash = ?, cert_serial = ?, credentials_at = ? "
                      "WHERE id = ?", (ACTIVE, password_hash,
                                       None if cert_serial is None else str(cert_serial), now, device_id))
        return self.device(device_id)

    def revoke(self, device_id: str) -> Device:
        """The device loses its broker account and certificate; its row stays for the record."""
        now = self._now()
        with self._write() as c:
            row = c.execute("SELECT state, cert_serial FROM devices WHERE id = ?", (device_id,)).fetchone()
            if row is None:
                raise NotFound(f"device {device_id!r} is not in the inventory")
            if row["cert_serial"]:
                c.execute("INSERT OR IGNORE INTO revoked_certs VALUES (?, ?, ?)", (row["cert_serial"], device_id, now))
            c.execute("UPDATE devices SET state = ?, password_hash = NULL, cert_serial = NULL, revoked_at = ? "
                      "WHERE id = ?", (REVOKED, now, device_id))
            c.execute("UPDATE claims SET used_at = ? WHERE device_id = ? AND used_at IS NULL", (now, device_id))
        return self.device(device_id)

    def revoked_serials(self) -> list[int]:
        return [int(r[0]) for r in self._conn.execute("SELECT serial FROM revoked_certs ORDER BY revoked_at")]

    def record_seen(self, device_id: str, ts: str | None, state: str) -> bool:
        """Keep the newest status a device reported (an ``offline`` will has no time); False if unknown."""
        with self._write() as c:
            if c.execute("SELECT 1 FROM devices WHERE id = ?", (device_id,)).fetchone() is None:
                return False
            if ts is None:
                c.execute("UPDATE devices SET last_state = ? WHERE id = ?", (state, device_id))
            else:
                c.execute("UPDATE devices SET last_seen = ?, last_state = ? WHERE id = ? AND "
                          "(last_seen IS NULL OR last_seen <= ?)", (ts, state, device_id, ts))
            return True

    def device_hashes(self) -> dict[str, str]:
        """username → password hash of every active device (what goes in the broker's password file)."""
        return {r[0]: r[1] for r in self._conn.execute(
            "SELECT id, password_hash FROM devices WHERE state = 'active' AND password_hash IS NOT NULL ORDER BY id")}

    # --- broker accounts ----------------------------------------------------------------------
    def set_account(self, username: str, role: str, password_hash: str) -> None:
        with self._write() as c:
            c.execute("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?)", (username, role, password_hash,
                                                                              self._now()))

    def accounts(self) -> dict[str, tuple[str, str]]:
        """username → (role, password hash)."""
        return {r[0]: (r[1], r[2]) for r in self._conn.execute("SELECT username, role, password_hash FROM accounts")}

    def revoke_serial(self, serial: int, owner: str) -> None:
        """Put a replaced certificate (a broker account's) on the revocation list."""
        with self._write() as c:
            c.execute("INSERT OR IGNORE INTO revoked_certs VALUES (?, ?, ?)", (str(serial), owner, self._now()))

    # --- claim codes --------------------------------------------------------------------------
    def add_claim(self, code: str, device_id: str, ttl: timedelta) -> datetime:
        """Remember a claim code as a selector and a salted scrypt hash (never the code); returns its expiry."""
        sel, verifier = selector(code), hash_code(code)
        now = self.clock.now()
        expires = now + ttl
        with self._write() as c:
            row = c.execute("SELECT state FROM devices WHERE id = ?", (device_id,)).fetchone()
            if row is None:
                raise NotFound(f"device {device_id!r} is not in the inventory")
            if row["state"] == REVOKED:
                raise InvalidInput(f"device {device_id!r} is revoked; create a new device instead")
            c.execute("INSERT INTO claims (selector, verifier, device_id, created_at, expires_at) "
                      "VALUES (?, ?, ?, ?, ?)", (sel, verifier, device_id, utc_iso(now), utc_iso(expires)))
        return expires

    def find_claim(self, code: str) -> int | None:
        """The row of ``code`` (checked against each verifier with its selector), or None. Reads only."""
        recent = utc_iso(self.clock.now() - timedelta(days=30))  # older codes: "unknown", and not hashed again
        rows = self._conn.execute("SELECT id, verifier FROM claims WHERE selector = ? AND verifier IS NOT NULL "
                                  "AND expires_at > ? ORDER BY id DESC", (selector(code), recent)).fetchall()
        return next((int(r["id"]) for r in rows if verify_code(code, r["verifier"])), None)

    def redeem_claim(self, code: str) -> str:
        """Use a claim code up and return its device id; :class:`ClaimRefused` if it cannot be used.

        The slow hash is checked before the write lock is taken (a wrong code never takes it); the use itself
        is one ``BEGIN IMMEDIATE`` transaction: two kiosks racing with the same code cannot both win.
        """
        claim_id = self.find_claim(code)
        if claim_id is None:
            raise ClaimRefused("unknown claim code (check for typos, or ask for a new one; codes made before "
                               "the upgrade of docs/SECURITY.md no longer work)")
        now = self.clock.now()
        with self._write() as c:
            row = c.execute("SELECT c.*, d.state FROM claims c JOIN devices d ON d.id = c.device_id "
                            "WHERE c.id = ?", (claim_id,)).fetchone()
            if row["used_at"] is not None:
                raise ClaimRefused(f"this claim code was already used at {row['used_at']}; ask for a new one")
            if parse_utc(row["expires_at"]) <= now:
                raise ClaimRefused(f"this claim code expired at {row['expires_at']}; ask for a new one")
            if row["state"] == REVOKED:
                raise ClaimRefused("the device of this claim code has been revoked")
            c.execute("UPDATE claims SET used_at = ? WHERE id = ?", (utc_iso(now), claim_id))
            return str(row["device_id"])

    def claims(self, device_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT device_id, created_at, expires_at, used_at, note FROM claims"
        args: tuple[str, ...] = ()
        if device_id:
            sql, args = sql + " WHERE device_id = ?", (device_id,)
        return [dict(r) for r in self._conn.execute(sql + " ORDER BY created_at", args)]


def _device(row: sqlite3.Row) -> Device:
    return Device(device_id=row["id"], site=row["site"], location=row["location"], state=row["state"],
                  scale=row["scale"], question=json.loads(row["question"]),
                  languages=tuple(json.loads(row["languages"])), hours=json.loads(row["hours"]),
                  timezone=row["timezone"], created_at=row["created_at"], credentials_at=row["credentials_at"],
                  revoked_at=row["revoked_at"], last_seen=row["last_seen"], last_state=row["last_state"],
                  cert_serial=row["cert_serial"])
