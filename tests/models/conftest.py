"""Fixtures of the builder tests: a guard that they leave the shipped models alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.models.support import fingerprint, written


@pytest.fixture(scope="package", autouse=True)
def shipped_models_untouched() -> Iterator[None]:
    """Fails the run if any test in tests/models wrote, rewrote or removed a file of models/:
    the worker and the rest of the suite run on those files (build into tmp_path with --out)."""
    before = fingerprint()
    yield
    assert written(before, fingerprint()) == [], "a test wrote into models/"
