"""Claim codes themselves: making one, reading what a person typed, and the slow salted hash the inventory keeps.

A code is 12 characters of Crockford base32 (60 random bits), shown as ``K7QF-9XRT-M2PA``. The inventory
stores, per code, only

- its **selector**: the first two characters (10 bits), so the responder checks a handful of rows instead of
  every open code, and
- its **verifier**: ``scrypt`` of the whole code with a random salt (N=2^14, r=8, p=1: ~16 MiB and tens of
  milliseconds per guess).

Someone with a copy of the inventory still faces 50 unknown bits behind a memory-hard hash for each code — and
every code expires within 7 days. Nothing stored, and nothing sent, can stand in for the code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from provisioning.errors import InvalidInput

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
CODE_LEN = 12
SELECTOR_LEN = 2
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LEN))
    return "-".join(raw[i:i + 4] for i in range(0, CODE_LEN, 4))


def normalize_code(code: str) -> str:
    """What a person typed → the canonical code: case, dashes, spaces and O/0, I/L/1 mix-ups forgiven."""
    raw = code.upper().translate(_CONFUSABLE) if isinstance(code, str) else ""
    if len(raw) != CODE_LEN or any(c not in ALPHABET for c in raw):
        raise InvalidInput(f"claim code {code!r} must be {CODE_LEN} letters and digits like K7QF-9XRT-M2PA")
    return "-".join(raw[i:i + 4] for i in range(0, CODE_LEN, 4))


def selector(code: str) -> str:
    """The code's first characters: which few stored codes to check (10 bits; the other 50 stay secret)."""
    return normalize_code(code)[:SELECTOR_LEN]


def _scrypt(code: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(normalize_code(code).encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=64 * 1024 * 1024)


def hash_code(code: str) -> str:
    """``scrypt$N$r$p$<salt>$<hash>`` (base64): what the inventory keeps instead of the code."""
    salt = os.urandom(16)
    digest = _scrypt(code, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return (f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def verify_code(code: str, verifier: str) -> bool:
    """True if ``code`` is the one ``verifier`` was made from (constant-time compare)."""
    try:
        kind, n, r, p, salt, want = verifier.split("$")
        if kind != "scrypt":
            return False
        got = _scrypt(code, base64.b64decode(salt), int(n), int(r), int(p))
        return hmac.compare_digest(got, base64.b64decode(want))
    except (ValueError, TypeError):
        return False
