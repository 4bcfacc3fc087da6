"""Rating scales and what each value means (negative, neutral, positive).

The sentiment bands follow the conventions the anchors use: a 4-smiley terminal counts the two
unhappy faces as negative, NPS counts 0-6 as detractors and 9-10 as promoters, CSAT counts 1-2 as
dissatisfied and 5 as very satisfied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from smileloop_core.errors import InvalidRating

Sentiment = Literal["negative", "neutral", "positive"]


@dataclass(frozen=True)
class Scale:
    """A closed integer range with sentiment bands."""

    name: str
    low: int
    high: int
    negative_max: int  # values <= this are negative
    positive_min: int  # values >= this are positive
    labels: tuple[str, ...] = ()

    @property
    def values(self) -> range:
        return range(self.low, self.high + 1)

    def validate(self, value: object) -> int:
        """Return ``value`` as an int on this scale, or raise :class:`InvalidRating` saying why."""
        if isinstance(value, bool) or not isinstance(value, int):
            try:
                as_int = int(str(value).strip())
            except ValueError:
                raise InvalidRating(
                    f"{value!r} is not a whole number; scale {self.name} takes {self.low}..{self.high}"
                ) from None
        else:
            as_int = value
        if not self.low <= as_int <= self.high:
            raise InvalidRating(f"{as_int} is outside scale {self.name} ({self.low}..{self.high})")
        return as_int

    def sentiment(self, value: int) -> Sentiment:
        if value <= self.negative_max:
            return "negative"
        if value >= self.positive_min:
            return "positive"
        return "neutral"


SCALES: dict[str, Scale] = {
    s.name: s
    for s in (
        Scale("smiley4", 1, 4, negative_max=2, positive_min=4,
              labels=("very unhappy", "unhappy", "happy", "very happy")),
        Scale("smiley5", 1, 5, negative_max=2, positive_min=4,
              labels=("very unhappy", "unhappy", "neutral", "happy", "very happy")),
        Scale("nps", 0, 10, negative_max=6, positive_min=9),
        Scale("csat5", 1, 5, negative_max=2, positive_min=5,
              labels=("very dissatisfied", "dissatisfied", "neutral", "satisfied", "very satisfied")),
    )
}


def get_scale(name: str) -> Scale:
    """Look a scale up by name; an unknown name raises :class:`InvalidRating` listing the known ones."""
    try:
        return SCALES[name]
    except KeyError:
        raise InvalidRating(f"unknown scale {name!r}; known scales: {', '.join(SCALES)}") from None
