"""Fixtures of the worker's tests: the default detector, loaded once per module."""

from __future__ import annotations

import pytest

from hook.config.table import DEFAULT_MODEL
from hook.detect.detector import Detector


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(DEFAULT_MODEL)
