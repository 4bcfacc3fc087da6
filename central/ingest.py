"""Validation of ratings messages (docs/PROTOCOL.md, "Ratings message" and "Message limits").

A malformed message is rejected whole with a reason; within a good message, each bad rating is
rejected on its own and the valid ones of the same message are still stored. Unknown fields are
ignored, so devices can be newer than central.

The limits (size, nesting, ratings per message, string lengths) are checked before work is spent: the
size before decoding, the count of JSON containers before decoding, the number of ratings before
validating any. :func:`check_message` never raises: whatever a payload does to the decoder or the
validators is the payload's fault and becomes a rejection reason.
"""

from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from central.errors import InvalidMessage
from central.moderation import moderate
from smileloop_core import topics
from smileloop_core.clock import parse_utc, utc_iso
from smileloop_core.errors import InvalidRating
from smileloop_core.ids import id_problem
from smileloop_core.scales import SCALES, get_scale
from smileloop_core.wire import decode_v1

if TYPE_CHECKING:
    from central.org import Org

MAX_MESSAGE_BYTES = 1_000_000
MAX_RATINGS = 10_000  # the device config's largest sync.batch_size
MAX_CONTAINERS = 3 * MAX_RATINGS + 16  # a rating is one object, with at most a flags list and a consent object
MAX_DEPTH = 6  # message → ratings → rating → flags: 4; room for one more level of optional structure
MAX_INT = 2**53  # seq, rev: integers that every store and JSON reader keeps exact
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


@dataclass(frozen=True)
class IncomingRating:
    id: str
    seq: int
    ts: datetime
    scale: str
    value: int
    sentiment: str
    location: str
    reason: str | None
    comment: str | None  # masked (central.moderation): what alerts, texts, topics and logs may show
    contact: str | None  # only with ``consent``; kept in ``ratings.contact`` until retention clears it
    flags: tuple[str, ...]
    boot_id: str | None
    mono: float | None
    rev: int
    ts_device: datetime | None = None  # the device's own ts when central repaired ``ts``; else None
    comment_original: str | None = None  # the comment as typed, for ``ratings.comment`` (admins, retention)
    consent: dict[str, str] | None = None  # {"text", "lang", "ts"} beside ``contact``


@dataclass(frozen=True)
class SentStamp:
    """The device's clocks at publish time (``sent``): wall time, boot id, monotonic seconds."""

    ts: datetime | None
    boot: str | None
    mono: float | None


@dataclass
class IngestResult:
    site: str
    device: str
    ratings: list[IncomingRating] = field(default_factory=list)
    sent: SentStamp | None = None
    rejected: list[tuple[str | None, str]] = field(default_factory=list)  # (rating id if known, reason)
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (rating id, why): a part left out, rating kept


def _str(obj: dict[str, Any], key: str, *, required: bool = True, limit: int = 200) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidMessage(f"'{key}' is missing")
        return None
    if not isinstance(value, str) or not value:
        raise InvalidMessage(f"'{key}' must be a non-empty string")
    if len(value) > limit:
        raise InvalidMessage(f"'{key}' is longer than {limit} characters")
    bad = _bad_text(value)
    if bad:
        raise InvalidMessage(f"'{key}' {bad}")
    return value


def _bad_text(value: str) -> str | None:
    """Free text may hold line breaks and tabs; not other control characters nor lone surrogates (no store can
    keep those: PostgreSQL refuses NUL, SQLite and every encoder refuse unpaired surrogates)."""
    if value.isprintable():
        return None
    for ch in value:
        if ch in "\n\t" or ch.isprintable() or ch == " ":
            continue
        code = ord(ch)
        if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
            return f"contains the control character U+{code:04X}"
        if 0xD800 <= code <= 0xDFFF:
            return f"contains an unpaired surrogate U+{code:04X}"
    return None


def _ident(obj: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    problem = id_problem(value, f"'{key}'")
    if problem:
        raise InvalidMessage(problem)
    return str(value)


def _whole(raw: dict[str, Any], key: str, low: int, default: int | None = None) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_INT:
        raise InvalidMessage(f"'{key}' must be a whole number from {low} to 2^53")
    return value


def _consent(raw: dict[str, Any]) -> dict[str, str]:
    """``consent`` beside a contact: the consent text's version id, the language it was read in, when."""
    consent = raw.get("consent")
    if not isinstance(consent, dict):
        raise InvalidMessage("a contact needs 'consent' ({\"text\", \"lang\", \"ts\"}): the contact is dropped")
    try:
        text = _str(consent, "text") or ""
        lang = _str(consent, "lang", limit=35) or ""
        ts = parse_utc(_str(consent, "ts") or "")
    except (InvalidMessage, ValueError) as e:
        raise InvalidMessage(f"'consent' is not valid ({e}): the contact is dropped") from None
    if not re.fullmatch(r"[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8})*", lang):
        raise InvalidMessage(f"'consent.lang' {lang[:40]!r} is not a language tag: the contact is dropped")
    return {"text": text, "lang": lang, "ts": utc_iso(ts)}


def _rating(raw: Any, dropped: list[tuple[str, str]] | None = None) -> IncomingRating:
    if not isinstance(raw, dict):
        raise InvalidMessage("a rating must be a JSON object")
    rid = raw.get("id")
    if not isinstance(rid, str) or not _UUID.fullmatch(rid):
        raise InvalidMessage(f"'id' {repr(rid)[:60]} is not a UUID (8-4-4-4-12 hexadecimal digits)")
    seq = _whole(raw, "seq", 1)
    ts_text = _str(raw, "ts")
    try:
        ts = parse_utc(ts_text or "")
    except ValueError:
        raise InvalidMessage(f"'ts' {ts_text!r} is not an RFC 3339 timestamp with a zone") from None
    scale_name = _str(raw, "scale")
    if scale_name not in SCALES:
        raise InvalidMessage(f"'scale' {scale_name!r} is not one of {', '.join(SCALES)}")
    scale = get_scale(scale_name)
    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMessage(f"'value' must be a whole number, got {value!r}")
    try:
        scale.validate(value)
    except InvalidRating as e:
        raise InvalidMessage(f"'value' {e}") from None
    flags = raw.get("flags") or []
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise InvalidMessage("'flags' must be a list of strings")
    if len(flags) > 8 or not all(0 < len(f) <= 32 and f.isidentifier() for f in flags):
        raise InvalidMessage("'flags' must be at most 8 short words")
    mono = raw.get("mono")
    if mono is not None and (isinstance(mono, bool) or not isinstance(mono, int | float) or
                             not 0 <= mono < 1e12):
        raise InvalidMessage("'mono' must be a number of seconds ≥ 0")
    rev = _whole(raw, "rev", 0, 0)
    comment = _str(raw, "comment", required=False, limit=1000)
    contact = _str(raw, "contact", required=False, limit=300)
    consent = None
    if contact is not None:
        try:
            consent = _consent(raw)
        except InvalidMessage as e:
            contact = None
            if dropped is not None:
                dropped.append((rid, str(e)))
    return IncomingRating(
        id=rid, seq=seq, ts=ts, scale=scale.name, value=value, sentiment=scale.sentiment(value),
        location=_ident(raw, "location") or "", reason=_ident(raw, "reason", required=False),
        comment=moderate(comment), comment_original=comment, contact=contact, consent=consent, flags=tuple(flags),
        boot_id=_str(raw, "boot", required=False), mono=float(mono) if mono is not None else None, rev=rev)


def _sent(raw: Any) -> SentStamp | None:
    """The optional ``sent`` stamp; a malformed one is ignored (it only serves clock repair)."""
    if not isinstance(raw, dict):
        return None
    ts: datetime | None = None
    if isinstance(raw.get("ts"), str):
        try:
            ts = parse_utc(raw["ts"])
        except ValueError:
            ts = None
    mono = raw.get("mono")
    boot = raw.get("boot")
    return SentStamp(ts=ts, boot=boot if isinstance(boot, str) and len(boot) <= 200 and not _bad_text(boot) else None,
                     mono=float(mono) if isinstance(mono, int | float) and not isinstance(mono, bool)
                     and 0 <= mono < 1e12 else None)


def _nesting(payload: bytes) -> tuple[int, int]:
    """(JSON arrays and objects, deepest nesting) of a payload, before decoding it: strings are cut out and
    only the brackets kept, both at C speed, so the Python loop sees a few hundred bytes, not the payload."""
    skeleton = _STRINGS.sub(b"", payload).translate(None, _NOT_BRACKETS)
    if len(skeleton) > 2 * MAX_CONTAINERS:
        return len(skeleton) // 2, 0
    deepest = max(itertools.accumulate(1 if c in (91, 123) else -1 for c in skeleton), default=0)
    return len(skeleton) // 2, deepest


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_message(topic_site: str, topic_device: str, payload: bytes) -> IngestResult:
    """Validate one ratings message; raises :class:`InvalidMessage` only if nothing in it is usable."""
    if len(payload) <= MAX_MESSAGE_BYTES:
        containers, deepest = _nesting(payload)
        if containers > MAX_CONTAINERS:
            raise InvalidMessage(f"message has more than {MAX_CONTAINERS} JSON arrays and objects")
        if deepest > MAX_DEPTH:
            raise InvalidMessage(f"message is nested more than {MAX_DEPTH} levels deep")
    try:
        msg = decode_v1(payload, what="message", limit=MAX_MESSAGE_BYTES, parse_constant=_no_constants)
    except (ValueError, RecursionError) as e:
        raise InvalidMessage(str(e) if isinstance(e, ValueError) else "message is nested too deeply") from None
    for key, expected in (("device", topic_device), ("site", topic_site)):
        if msg.get(key) != expected:
            shown = repr(msg.get(key))[:80]
            raise InvalidMessage(f"'{key}' {shown} does not match the topic's {expected!r}")
    ratings = msg.get("ratings")
    if not isinstance(ratings, list) or not ratings:
        raise InvalidMessage("'ratings' must be a non-empty list")
    if len(ratings) > MAX_RATINGS:
        raise InvalidMessage(f"message holds {len(ratings)} ratings; at most {MAX_RATINGS}")
    result = IngestResult(site=topic_site, device=topic_device, sent=_sent(msg.get("sent")))
    for raw in ratings:
        try:
            result.ratings.append(_rating(raw, result.dropped))
        except InvalidMessage as e:
            rid = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
            result.rejected.append((_uuid_or_none(rid), str(e)))
    return result


def _uuid_or_none(rid: str | None) -> str | None:
    """A rejected rating's id, echoed in the receipt only when it is a UUID (never a hostile string)."""
    if rid is None or len(rid) != 36:
        return None
    try:
        return rid if str(uuid.UUID(rid)) == rid.lower() else None
    except ValueError:
        return None


@dataclass
class Checked:
    """One message after :func:`check_message`: what to store, or why the whole of it was rejected."""

    topic: str
    payload: bytes
    site: str | None = None
    device: str | None = None
    result: IngestResult | None = None
    reason: str | None = None  # set when the message is rejected whole


def check_message(topic: str, payload: bytes) -> Checked:
    """Parse one message from the broker. Never raises: any failure is the payload's and becomes ``reason``."""
    out = Checked(topic, payload)
    parsed = topics.parse_device_topic(topic)
    if parsed is None or parsed[2] != "ratings":
        out.reason = "not a ratings topic"
        return out
    site, device, _ = parsed
    problem = id_problem(site, "the topic's site") or id_problem(device, "the topic's device")
    if problem:
        out.reason = problem
        return out
    out.site, out.device = site, device
    try:
        out.result = parse_message(site, device, payload)
    except InvalidMessage as e:
        out.reason = str(e)
    except Exception as e:  # whatever a hostile payload does to a decoder or validator is its own fault
        out.reason = f"message could not be read ({type(e).__name__}: {str(e)[:200]})"
    return out


def only_where_registered(result: IngestResult, org: Org) -> None:
    """A device speaks for the location the org tree registers it at, no other: a rating naming another
    location is rejected (a compromised kiosk cannot page the contacts of the rest of its site). A device the
    org tree does not list is not checked."""
    registered = org.location_of(result.site, result.device)
    if registered is None:
        return
    wrong = [r for r in result.ratings if r.location != registered]
    if wrong:
        result.ratings = [r for r in result.ratings if r.location == registered]
        result.rejected += [(r.id, f"location {r.location!r} is not where {result.device} is registered "
                                   f"({registered!r})") for r in wrong]
