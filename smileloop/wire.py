"""The envelope every smileloop JSON message shares (docs/PROTOCOL.md): bounded size, a JSON object, ``"v": 1``."""

from __future__ import annotations

import json
from typing import Any


def decode_v1(payload: bytes, *, what: str, limit: int) -> dict[str, Any]:
    """The message as a dict, or :class:`ValueError` naming what is wrong; callers wrap it in their own error."""
    if len(payload) > limit:
        raise ValueError(f"{what} is {len(payload)} bytes; at most {limit}")
    try:
        msg = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{what} is not JSON: {e}") from None
    if not isinstance(msg, dict):
        raise ValueError(f"{what} must be a JSON object")
    if msg.get("v") != 1:
        raise ValueError(f"{what} 'v' is {msg.get('v')!r}: an unsupported version; this reader takes v=1")
    return msg
