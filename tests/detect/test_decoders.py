"""The decoders of end-to-end outputs: TF SSD's truncation and axes, end-to-end and split rows."""

from __future__ import annotations

import numpy as np
import pytest

from hook.detect import decoders


def test_decode_ssd_truncates_swaps_axes_and_shifts_ids() -> None:
    boxes = np.array(
        [[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0], [0.2, 0.2, 0.4, 0.4]], dtype=np.float32
    )
    scores = np.array([0.7, 0.6, 0.9], dtype=np.float32)
    ids = np.array([3.0, 1.0, 2.0], dtype=np.float32)
    out, kept, classes = decoders.decode_ssd(
        np.array(2.0), boxes, scores, ids, canvas=(200, 100), min_score=0.25, classes=3
    )
    np.testing.assert_allclose(out, [[40, 10, 120, 50], [0, 0, 200, 100]], atol=1e-4)
    assert kept.tolist() == pytest.approx([0.7, 0.6]) and classes.tolist() == [2, 0]
    mask = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    _, _, masked = decoders.decode_ssd(
        np.array([2]),
        boxes,
        scores,
        ids,
        canvas=(200, 100),
        min_score=0.25,
        classes=3,
        class_mask=mask,
    )
    assert masked.tolist() == [0]


def test_decode_end2end_and_detr_agree_and_scale_fractions() -> None:
    rows = np.array(
        [[0.1, 0.2, 0.3, 0.4, 0.9, 1], [0.5, 0.5, 0.6, 0.6, 0.1, 0], [0.0, 0.0, 0.1, 0.1, 0.8, 5]],
        dtype=np.float32,
    )
    boxes, scores, ids = decoders.decode_end2end(rows, canvas=(200, 100), min_score=0.25, classes=2)
    np.testing.assert_allclose(boxes, [[20, 20, 60, 40]], atol=1e-4)  # class 5 is unknown
    assert scores.tolist() == pytest.approx([0.9]) and ids.tolist() == [1]
    split = decoders.decode_detr(
        rows[:, :4],
        rows[:, 4],
        rows[:, 5].astype(np.int64),
        canvas=(200, 100),
        min_score=0.25,
        classes=2,
    )
    np.testing.assert_allclose(split[0], boxes)
    known = decoders.decode_detr(
        rows[:, :4],
        rows[:, 4],
        rows[:, 5],
        canvas=(200, 100),
        min_score=0.25,
        classes=2,
        fractions=False,
    )
    np.testing.assert_allclose(known[0], [[0.1, 0.2, 0.3, 0.4]])  # told: already pixels
