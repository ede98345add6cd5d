"""What the store hands out besides tasks: small frozen records, never raw documents."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Counter:
    """One counter document: its key (e.g. "deliveries|delivered") and its numbers."""

    key: str
    values: dict[str, float]

    def get(self, name: str) -> float:
        return self.values.get(name, 0.0)
