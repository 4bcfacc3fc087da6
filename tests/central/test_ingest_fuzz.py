"""Hostile payloads: whatever a device sends, central either stores it or rejects it with a reason — it never
raises, and one bad message never keeps a good one from being stored (property-based, hypothesis)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central.errors import InvalidMessage
from central.ingest import MAX_MESSAGE_BYTES, check_message, parse_message
from central.service import CentralService
from central.store import CentralStore
from smileloop_core import topics
from smileloop_core.clock import FakeClock, utc_iso
from smileloop_core.mqtt import BrokerSettings
from tests.central.conftest import TUESDAY_10

SITE, DEVICE = "store-1", "kiosk-1"
TOPIC = topics.ratings(SITE, DEVICE)

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                          max_leaves=20)


def good_rating(seq: int = 1, **over: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "seq": seq, "ts": utc_iso(TUESDAY_10), "scale": "smiley4", "value": 3,
            "location": "exit", "reason": None, "boot": "b-1", "mono": 12.5, **over}


def message(ratings: list[Any], **over: Any) -> dict[str, Any]:
    return {"v": 1, "device": DEVICE, "site": SITE, "ratings": ratings, **over}


FIELDS = ("id", "seq", "ts", "scale", "value", "location", "reason", "comment", "contact", "flags", "boot", "mono",
          "rev")

# A valid rating with one field replaced by anything (or removed): the validators' whole input space.
mutated_rating = st.builds(lambda key, value, drop: {k: v for k, v in {**good_rating(), key: value}.items()
                                                      if not (drop and k == key)},
                           st.sampled_from(FIELDS), json_value, st.booleans())
hostile_text = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(["\x00", "\n", "#", "+", "/", "\ud800"]),
                       max_size=80)


def _encode(obj: Any) -> bytes:
    return json.dumps(obj, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


payloads = st.one_of(
    st.binary(max_size=300),
    json_value.map(_encode),
    st.lists(mutated_rating, min_size=1, max_size=5).map(lambda rs: _encode(message(rs))),
    st.builds(lambda key, value: _encode({**message([good_rating()]), key: value}),
              st.sampled_from(("v", "device", "site", "ratings", "sent")), json_value),
    st.builds(lambda loc, reason: _encode(message([good_rating(location=loc, reason=reason)])), hostile_text,
              hostile_text),
    st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1, max_value=3000).map(lambda n: b'{"v":1,"a":' + b"[" * n + b"]" * n + b"}"),
)
device_topics = st.one_of(st.just(TOPIC), st.builds(topics.ratings, hostile_text, hostile_text),
                          st.text(max_size=60))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=payloads)
def test_parse_message_returns_or_rejects_with_a_reason(payload: bytes) -> None:
    try:
        result = parse_message(SITE, DEVICE, payload)
    except InvalidMessage as e:
        assert str(e), "a rejection must say why"
        return
    for rid, why in result.rejected:
        assert why and (rid is None or str(uuid.UUID(rid)) == rid)
    for r in result.ratings:  # what passes is what every store can keep
        for text in (r.location, r.reason, r.comment, r.contact, r.boot_id):
            if text is not None:
                assert "\x00" not in text
                text.encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(topic=device_topics, payload=payloads)
def test_check_message_never_raises(topic: str, payload: bytes) -> None:
    checked = check_message(topic, payload)
    assert (checked.result is None) == bool(checked.reason)


def test_limits_are_checked_before_decoding() -> None:
    assert "bytes; at most" in check_message(TOPIC, b" " * (MAX_MESSAGE_BYTES + 1)).reason  # type: ignore[operator]
    deep = b"[" * 100_000 + b"]" * 100_000
    assert "JSON arrays and objects" in (check_message(TOPIC, deep).reason or "")
    nested = _encode(message([good_rating(flags=[[[[["x"]]]]])]))
    assert "nested" in (check_message(TOPIC, nested).reason or "")
    assert "NaN" in (check_message(TOPIC, _encode(message([good_rating(mono=float("nan"))]))).reason or "")


def test_identifiers_follow_one_pattern() -> None:
    for bad in ("", "exit\n", "a#b", "a+b", "a/b", "é", "x" * 65, "-lead"):
        result = parse_message(SITE, DEVICE, _encode(message([good_rating(location=bad)])))
        assert not result.ratings and "identifier" in result.rejected[0][1], bad
    assert check_message(topics.ratings("store-1", "kiosk\n1"), b"{}").reason
    assert "does not match the topic" in (check_message(TOPIC, _encode(message([good_rating()],
                                                                               device="kiosk-2"))).reason or "")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.tuples(device_topics, payloads), min_size=1, max_size=6))
def test_the_whole_handle_path_stores_or_rejects_and_good_messages_get_through(tmp_path: Path,
                                                                              batch: list[tuple[str, bytes]]) -> None:
    """Hostile messages in one group commit with a good one from another device: the good one is stored and
    receipted; every other message is either receipted or has a rejection row with a reason."""
    store = CentralStore(tmp_path / f"{uuid.uuid4().hex}.db")
    service = CentralService(store, BrokerSettings.from_url("mqtt://127.0.0.1:1"), clock=FakeClock(TUESDAY_10))
    try:
        good = good_rating()
        good_msg = (topics.ratings(SITE, "kiosk-2"), _encode({**message([good]), "device": "kiosk-2"}))
        receipts = service.handle_many([*batch, good_msg])
        assert receipts[-1] is not None and receipts[-1]["stored"] == [[good["id"], 0]]
        assert store.query("SELECT device_id FROM ratings WHERE id = ?", (good["id"],)) == [{"device_id": "kiosk-2"}]
        rejected = store.query("SELECT topic, reason FROM rejected")
        assert all(r["reason"] for r in rejected)
        for (topic, _), receipt in zip(batch, receipts, strict=False):
            if receipt is None:  # rejected whole: on record with its reason
                assert any(r["reason"] for r in rejected), topic
    finally:
        store.close()
