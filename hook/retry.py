"""Retry policy: a small validated value, and the one rule for how long to wait."""

from __future__ import annotations

import random
from dataclasses import dataclass

CAP_SECONDS = 600.0  # no wait between attempts is longer, whatever a receiver asks


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped; `max_attempts` counts the first try. Built
    from the settings (HOOK_RETRY_BASE_SECONDS, HOOK_MAX_ATTEMPTS, HOOK_REPORT_ATTEMPTS) by
    hook.config.settings, the one place their defaults are written."""

    base: float
    max_attempts: int
    cap: float = CAP_SECONDS

    def __post_init__(self) -> None:
        if not (self.base > 0 and self.cap >= self.base and self.max_attempts >= 1):
            raise ValueError(f"invalid retry policy {self}")

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.max_attempts

    def next_delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based).

        Half fixed, half random ("equal jitter"): retries of many tasks that failed together
        spread out, yet each waits at least half the exponential delay.
        """
        ceiling = min(self.cap, self.base * 2 ** max(0, attempt - 1))
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds before the attempt after `attempt`: the backoff, or the receiver's own
        Retry-After (429, 503) when that is longer, up to the cap."""
        return max(self.next_delay(attempt, rng), min(retry_after or 0.0, self.cap))
