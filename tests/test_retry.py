"""The retry policy: exponential, jittered, capped, and bounded in attempts."""

from __future__ import annotations

import random

import pytest

from hook.retry import RetryPolicy


def test_delays_double_with_jitter_within_bounds() -> None:
    policy = RetryPolicy(base=2, cap=60, max_attempts=8)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 32), (6, 60), (9, 60)]:
        delays = [policy.next_delay(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # really jittered


def test_exhausted_counts_the_first_try() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.exhausted(n) for n in (1, 2, 3, 4)] == [False, False, True, True]


@pytest.mark.parametrize("kwargs", [{"base": 0}, {"base": 10, "cap": 5}, {"max_attempts": 0}])
def test_invalid_policies_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="invalid retry policy"):
        RetryPolicy(**kwargs)
