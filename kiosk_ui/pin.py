"""Staff PINs: the hashing lives in :mod:`smileloop_core.pin`, where central (which pushes PIN hashes to the
fleet) and the device (which checks a pushed hash) reach it too; the kiosk's names for it are kept here."""

from __future__ import annotations

from smileloop_core.pin import (
    ALGORITHM,
    ITERATIONS,
    MAX_DIGITS,
    MAX_ITERATIONS,
    MIN_DIGITS,
    check_pin_format,
    check_pin_hash,
    hash_pin,
    verify_pin,
)

__all__ = ["ALGORITHM", "ITERATIONS", "MAX_DIGITS", "MAX_ITERATIONS", "MIN_DIGITS", "check_pin_format",
           "check_pin_hash", "hash_pin", "verify_pin"]
