"""The one identifier pattern (docs/PROTOCOL.md, "Identifiers"): sites, devices, locations and reasons.

Ids become MQTT topic levels, file names and lines of the broker's password and ACL files, so they are
letters, digits, ``.``, ``_`` and ``-`` only, starting with a letter or digit, at most 64 characters — no
empty strings, no control characters (a trailing newline included: the match is ``fullmatch``), no ``+``,
``#`` or ``/``.
"""

from __future__ import annotations

import functools
import re

ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_ID = re.compile(ID_PATTERN)


def is_id(value: object) -> bool:
    """True when ``value`` is a string that is a whole valid identifier."""
    return isinstance(value, str) and len(value) <= 64 and _valid(value)


@functools.lru_cache(maxsize=4096)  # the same few sites, devices and locations over and over
def _valid(value: str) -> bool:
    return _ID.fullmatch(value) is not None


def id_problem(value: object, what: str) -> str | None:
    """None for a valid id; else a sentence naming ``what`` and the offending value."""
    if is_id(value):
        return None
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return (f"{what} {shown} is not a valid identifier: 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit")
