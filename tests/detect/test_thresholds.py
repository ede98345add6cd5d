"""Score thresholds per label: HOOK_LABEL_SCORES parsed, and the floor detectors keep to."""

from __future__ import annotations

import pytest

from hook.detect.thresholds import FLOOR, Thresholds, parse_label_scores


def test_label_scores_are_label_equals_score_pairs() -> None:
    assert parse_label_scores(" person=0.3, car = 0.25 ,") == {"person": 0.3, "car": 0.25}
    assert parse_label_scores("") == {} and parse_label_scores(" None ") == {}
    for bad, why in [
        ("person", "not label=score"),
        ("=0.3", "not label=score"),
        ("person=high", "'high' is not a number"),
        ("person=1.5", "from 0 to 1"),
        ("car=0.3,car=0.4", "'car' is given twice"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_label_scores(bad)


def test_a_label_has_its_own_threshold_or_the_default_and_the_floor_is_the_lowest() -> None:
    limits = Thresholds(0.35, {"person": 0.3})
    assert limits.of("person") == 0.3 and limits.of("giraffe") == 0.35
    assert limits.floor == FLOOR == 0.2  # a camera's rule may go down to it
    assert Thresholds(0.1).floor == 0.1 and Thresholds(0.5, {"car": 0.15}).floor == 0.15
