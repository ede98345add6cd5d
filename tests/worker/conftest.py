"""Fixtures of the worker's tests: the default detector, loaded once per module, and the
stages' fake Settler (tests/worker/support.py; test_settling.py has the real one)."""

from __future__ import annotations

import pytest

from hook.config.table import DEFAULT_MODEL
from hook.detect.detector import Detector
from tests.worker.support import FakeSettler


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(DEFAULT_MODEL)


@pytest.fixture
def settler() -> FakeSettler:
    return FakeSettler()
