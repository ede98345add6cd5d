"""The default pair of models (HOOK_MODEL unset): the fusion weights and sure scores chosen for
them, in force whenever HOOK_MODEL names the same two files, in any order or spelling."""

from __future__ import annotations

from pathlib import Path

from hook.config.table import DEFAULT_MODELS

DEFAULT_WEIGHTS = (1.0, 1.5)
DEFAULT_SURE = (0.6, 0.55)  # a lone box this sure keeps its score (docs/accuracy.md)


def default_weights(models: tuple[Path, ...]) -> tuple[float, ...]:
    """The chosen weights when HOOK_MODEL names the default pair (any spelling, any order)."""
    return _for_default_pair(models, DEFAULT_WEIGHTS)


def default_sure(models: tuple[Path, ...]) -> tuple[float, ...]:
    """The chosen sure scores when HOOK_MODEL names the default pair; else none."""
    return _for_default_pair(models, DEFAULT_SURE)


def _for_default_pair(models: tuple[Path, ...], values: tuple[float, ...]) -> tuple[float, ...]:
    """`values` in the order HOOK_MODEL names the default pair (any spelling), else ()."""
    chosen = {m.resolve(): v for m, v in zip(DEFAULT_MODELS, values, strict=True)}
    resolved = [m.resolve() for m in models]
    if sorted(resolved) != sorted(chosen):
        return ()
    return tuple(chosen[m] for m in resolved)
