"""The retry policy: exponential, jittered, capped, and bounded in attempts."""

from __future__ import annotations

import random

import pytest

from hook.retry import RetryPolicy
from tests.factories import make_settings


def test_delays_double_with_jitter_within_bounds() -> None:
    policy = RetryPolicy(base=2, cap=60, max_attempts=8)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 32), (6, 60), (9, 60)]:
        delays = [policy.next_delay(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # really jittered


def test_exhausted_counts_the_first_try() -> None:
    policy = RetryPolicy(base=2.0, max_attempts=3)
    assert [policy.exhausted(n) for n in (1, 2, 3, 4)] == [False, False, True, True]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base": 0, "max_attempts": 8},
        {"base": 10, "cap": 5, "max_attempts": 8},
        {"base": 2, "max_attempts": 0},
    ],
)
def test_invalid_policies_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="invalid retry policy"):
        RetryPolicy(**kwargs)


@pytest.mark.parametrize(
    ("asked", "lowest", "highest"),
    [(None, 2, 4), (0.5, 2, 4), (30.0, 30, 30), (86400.0, 60, 60)],
)
def test_the_delay_is_the_backoff_or_the_receivers_retry_after_up_to_the_cap(
    asked: float | None, lowest: float, highest: float
) -> None:
    """One rule for deliveries and failure reports alike: the longer of the two, capped."""
    policy = RetryPolicy(base=2, cap=60, max_attempts=8)
    delays = [policy.delay(2, asked, random.Random(n)) for n in range(50)]
    assert all(lowest <= d <= highest for d in delays)


def test_the_defaults_are_the_settings_tables() -> None:
    """No default of its own but the cap: base and attempts come from the settings."""
    settings = make_settings()
    assert settings.retry_policy == RetryPolicy(2.0, 8)
    assert settings.report_policy == RetryPolicy(2.0, 5)
    assert make_settings(HOOK_RETRY_BASE_SECONDS="5", HOOK_MAX_ATTEMPTS="3").retry_policy == (
        RetryPolicy(5.0, 3)
    )
