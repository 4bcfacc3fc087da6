"""The envelope every smileloop JSON message shares (docs/PROTOCOL.md): bounded size, a JSON object, ``"v": 1``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def decode_v1(payload: bytes, *, what: str, limit: int,
              parse_constant: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """The message as a dict, or :class:`ValueError` naming what is wrong; callers wrap it in their own error.

    ``parse_constant`` sees ``NaN``/``Infinity`` (Python's decoder accepts them; raise to refuse them).
    """
    if len(payload) > limit:
        raise ValueError(f"{what} is {len(payload)} bytes; at most {limit}")
    try:
        msg = json.loads(payload, parse_constant=parse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{what} is not JSON: {e}") from None
    if not isinstance(msg, dict):
        raise ValueError(f"{what} must be a JSON object")
    if msg.get("v") != 1:
        raise ValueError(f"{what} 'v' is {repr(msg.get('v'))[:40]}: an unsupported version; this reader takes v=1")
    return msg


def encode(body: dict[str, Any]) -> str:
    """Any v1 message as compact JSON text (``"v": 1`` first); non-ASCII text kept as it is."""
    return json.dumps({"v": 1, **body}, separators=(",", ":"), ensure_ascii=False)


def receipt(ts: str, stored: list[list[Any]], rejected: list[list[Any]]) -> str:
    """Central's receipt on a device's ``ack`` topic (docs/PROTOCOL.md, "Receipt")."""
    return encode({"ts": ts, "stored": stored, "rejected": rejected})
