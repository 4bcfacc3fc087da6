"""Staff PINs, stored only as salted PBKDF2 hashes (``[staff] pin_hash`` in device.toml).

The config file travels on SD cards and through config pushes, so it must never hold the PIN itself. The kiosk
checks a typed PIN with :func:`verify_pin`; central (``smileloop fleet push``) and the kiosk's ``hash-pin``
command make hashes with :func:`hash_pin`; the device checks a pushed hash with :func:`check_pin_hash`.
Format: ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>``.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from smileloop_core.errors import PinError

ALGORITHM = "pbkdf2_sha256"
# 75 ms per check on the build machine (a Pi 4 is a few times slower): slow for a brute force, quick for staff.
ITERATIONS = 200_000
# The check runs on the kiosk's UI thread: a pushed hash asking for more than this would freeze the screen.
MAX_ITERATIONS = 2_000_000
MIN_DIGITS = 4
MAX_DIGITS = 12

__all__ = ["ALGORITHM", "ITERATIONS", "MAX_DIGITS", "MAX_ITERATIONS", "MIN_DIGITS", "PinError", "check_pin_format",
           "check_pin_hash", "hash_pin", "verify_pin"]


def check_pin_format(pin: str) -> str:
    """Return ``pin`` if it is 4-12 digits (what the on-screen pad can type), else raise :class:`PinError`."""
    if not pin.isdigit() or not pin.isascii():
        raise PinError("a staff PIN must be digits only (the kiosk shows a number pad)")
    if not MIN_DIGITS <= len(pin) <= MAX_DIGITS:
        raise PinError(f"a staff PIN must have {MIN_DIGITS} to {MAX_DIGITS} digits, got {len(pin)}")
    return pin


def hash_pin(pin: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """Hash a PIN for ``[staff] pin_hash``.

    >>> hash_pin("2468", salt=b"0123456789abcdef", iterations=1000)[:27]
    'pbkdf2_sha256$1000$30313233'
    """
    check_pin_format(pin)
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise PinError(f"iterations must be 1..{MAX_ITERATIONS}, got {iterations}")
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"{ALGORITHM}${iterations}${salt.hex()}${digest.hex()}"


def check_pin_hash(stored: str) -> tuple[int, bytes, bytes]:
    """``stored`` split into (iterations, salt, digest); :class:`PinError` naming the fault if it is no usable hash.

    >>> check_pin_hash("pbkdf2_sha256$1000$00ff$0a0b")
    (1000, b'\\x00\\xff', b'\\n\\x0b')
    """
    try:
        algorithm, iterations_text, salt_hex, digest_hex = stored.split("$")
        iterations = int(iterations_text)
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        raise PinError("staff.pin_hash is not a 'pbkdf2_sha256$<iterations>$<salt>$<hash>' string; "
                       "make one with 'smileloop kiosk hash-pin'") from None
    if algorithm != ALGORITHM or not expected:
        raise PinError(f"staff.pin_hash uses {algorithm!r}; only {ALGORITHM} is supported")
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise PinError(f"staff.pin_hash asks for {iterations} iterations; 1..{MAX_ITERATIONS} keeps the screen live")
    return iterations, salt, expected


def verify_pin(pin: str, stored: str) -> bool:
    """True if ``pin`` matches ``stored``; a malformed ``stored`` raises :class:`PinError` (staff must fix it)."""
    iterations, salt, expected = check_pin_hash(stored)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return hmac.compare_digest(digest, expected)
