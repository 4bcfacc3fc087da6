import pytest

from smileloop_core.errors import InvalidRating
from smileloop_core.scales import SCALES, get_scale


@pytest.mark.parametrize(("scale", "negative", "neutral", "positive"), [
    ("smiley4", [1, 2], [3], [4]),
    ("smiley5", [1, 2], [3], [4, 5]),
    ("nps", [0, 1, 2, 3, 4, 5, 6], [7, 8], [9, 10]),
    ("csat5", [1, 2], [3, 4], [5]),
])
def test_sentiment_bands_cover_the_whole_scale(scale, negative, neutral, positive):
    s = get_scale(scale)
    assert [v for v in s.values if s.sentiment(v) == "negative"] == negative
    assert [v for v in s.values if s.sentiment(v) == "neutral"] == neutral
    assert [v for v in s.values if s.sentiment(v) == "positive"] == positive


@pytest.mark.parametrize("bad", [0, 5, -1, "x", "2.5", True, None])
def test_smiley4_refuses_values_off_the_scale(bad):
    with pytest.raises(InvalidRating):
        SCALES["smiley4"].validate(bad)


def test_validate_accepts_text_digits_as_typed_on_a_cli():
    assert SCALES["nps"].validate(" 10 ") == 10


def test_unknown_scale_names_the_known_ones():
    with pytest.raises(InvalidRating, match="smiley4, smiley5, nps, csat5"):
        get_scale("stars")
