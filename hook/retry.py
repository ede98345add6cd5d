"""Retry policy: a small validated value and a pure `next_delay(attempt)`."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped; `max_attempts` counts the first try."""

    base: float = 2.0
    cap: float = 600.0
    max_attempts: int = 8

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
