"""Passwords in Mosquitto's own file format, and secret files that only their owner can read.

Mosquitto 2.0 stores ``user:$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512 hash>``
(what ``mosquitto_passwd`` writes); the broker never needs the plain password, and neither does the inventory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tempfile
import warnings
from pathlib import Path

from provisioning.errors import InvalidInput

MOSQUITTO_ITERATIONS = 101  # mosquitto_passwd's default in 2.0
SALT_BYTES = 12


DEVICE_BCRYPT_COST = 6  # NATS checks bcrypt at every connect; a 192-bit random password needs no slow hash


def bcrypt_hash(password: str, *, cost: int = 12) -> str:
    """A ``$2b$`` bcrypt hash (what NATS checks passwords against) from the C library's crypt(3).

    The cost slows a guesser of a *chosen* password; the passwords made here are 192 random bits, beyond any
    guessing at any cost, so devices get :data:`DEVICE_BCRYPT_COST` and a reconnect storm stays cheap for the
    cluster (docs/SCALE.md). Staff accounts keep the default 12.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # libxcrypt does bcrypt; the module leaves Python in 3.13 (use the bcrypt package then)

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2 ** cost))


def new_password(nbytes: int = 24) -> str:
    """A random password (URL-safe, ~192 bits): machines type it, so it can be long."""
    return secrets.token_urlsafe(nbytes)


def mosquitto_hash(password: str, *, salt: bytes | None = None, iterations: int = MOSQUITTO_ITERATIONS) -> str:
    """``$7$…`` as ``mosquitto_passwd`` writes it (PBKDF2-HMAC-SHA512, 64-byte key)."""
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_mosquitto_hash(password: str, encoded: str) -> bool:
    """True if ``password`` matches a ``$7$`` (or legacy ``$6$``) hash from a Mosquitto password file."""
    parts = encoded.split("$")
    try:
        if len(parts) == 5 and parts[1] == "7":
            iterations, salt, want = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
            got = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=len(want))
        elif len(parts) == 4 and parts[1] == "6":
            salt, want = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            got = hashlib.sha512(password.encode() + salt).digest()
        else:
            raise InvalidInput(f"not a Mosquitto password hash: {encoded[:12]!r}…")
    except (ValueError, TypeError) as e:
        if isinstance(e, InvalidInput):
            raise
        raise InvalidInput(f"not a Mosquitto password hash: {encoded[:12]!r}…") from None
    return hmac.compare_digest(got, want)


def write_secret(path: Path, data: str | bytes, *, mode: int = 0o600, owner: str | None = None) -> Path:
    """Write ``path`` atomically with ``mode`` from the first byte (never briefly world-readable).

    ``owner`` (a user name) hands the file to the account that must read it, e.g. ``mosquitto``;
    only root can do that, so it is ignored otherwise.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        if owner and os.geteuid() == 0:
            import pwd

            entry = pwd.getpwnam(owner)
            os.chown(tmp, entry.pw_uid, entry.pw_gid)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_public(path: Path, data: str | bytes) -> Path:
    """Write a non-secret file (a certificate, a config) atomically, 0644."""
    return write_secret(path, data, mode=0o644)
