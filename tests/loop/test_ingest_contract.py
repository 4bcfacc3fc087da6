"""The ratings message contract of docs/PROTOCOL.md, as central validates it."""

import json
import uuid

import pytest

from central.errors import InvalidMessage
from central.ingest import parse_message


def rating(**over):
    r = {"id": str(uuid.uuid4()), "seq": 1, "ts": "2026-11-24T09:15:02.113Z", "scale": "smiley4", "value": 1,
         "location": "exit", "reason": None}
    r.update(over)
    return r


def msg(*ratings, **over):
    m = {"v": 1, "device": "k1", "site": "s1", "ratings": list(ratings)}
    m.update(over)
    return json.dumps(m).encode()


def test_valid_message_and_unknown_fields_are_ignored():
    result = parse_message("s1", "k1", msg(rating(extra="x"), future_field={"a": 1}))
    assert len(result.ratings) == 1 and result.rejected == []
    assert result.ratings[0].sentiment == "negative"


@pytest.mark.parametrize(("payload", "why"), [
    (b"not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (msg(rating(), v=2), "version"),
    (msg(rating(), device="k2"), "does not match the topic"),
    (msg(rating(), site="other"), "does not match the topic"),
    (msg(), "non-empty list"),
])
def test_malformed_messages_are_rejected_whole_with_a_reason(payload, why):
    with pytest.raises(InvalidMessage, match=why):
        parse_message("s1", "k1", payload)


@pytest.mark.parametrize(("bad", "why"), [
    ({"value": 5}, "outside scale"),
    ({"value": "1"}, "whole number"),
    ({"scale": "stars"}, "scale"),
    ({"id": "not-a-uuid"}, "UUID"),
    ({"ts": "yesterday"}, "RFC 3339"),
    ({"ts": "2026-11-24T09:15:02"}, "zone"),
    ({"seq": 0}, "seq"),
    ({"location": None}, "location"),
])
def test_one_bad_rating_is_rejected_and_the_others_kept(bad, why):
    good = rating()
    broken = rating(**bad)
    result = parse_message("s1", "k1", msg(good, broken))
    assert [r.id for r in result.ratings] == [good["id"]]
    assert len(result.rejected) == 1 and why.lower() in result.rejected[0][1].lower()
