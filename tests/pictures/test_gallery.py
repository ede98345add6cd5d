"""The gallery on a real nx-27017: a task's picture drawn from its kept original and stored
labels on the first look and kept for the next; none where there is nothing to draw from."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
from PIL import Image

from hook.pictures.gallery import Gallery, shown
from hook.store import TaskStore
from tests.factories import FakeClock, event, image_bytes, worked_task

MAX_PIXELS = 40_000_000


@pytest.fixture
def gallery(store: TaskStore, clock: FakeClock) -> Gallery:
    return Gallery(store, max_pixels=MAX_PIXELS, clock=clock)


def opened(jpeg: bytes | None) -> Image.Image:
    assert jpeg is not None
    image = Image.open(io.BytesIO(jpeg))
    image.load()
    return image


def test_the_first_look_draws_the_labels_on_the_original_and_keeps_it(
    store: TaskStore, gallery: Gallery
) -> None:
    """worked_task labels "dog" on the top-left quarter of each image: the picture is the
    original with that box drawn, stored for the next look, which reads it as it is."""
    task_id = worked_task(store, event(2, seed=3), {"dog": 0.8}, keep_images=True)
    assert store.picture_indexes(task_id) == []
    first = gallery.picture(task_id, 1)
    picture = opened(first)
    original = opened(store.original(task_id, 1)).convert("RGB")
    assert (picture.format, picture.size) == ("JPEG", original.size)
    changed = (
        np.abs(
            np.asarray(picture.convert("RGB"), dtype=np.int16)
            - np.asarray(original, dtype=np.int16)
        ).max(axis=2)
        > 100
    )
    assert changed.mean() > 0.01  # the box and its tag
    assert changed[:4, :4].any()  # the box's corner, at the original's top-left
    assert not changed[original.height // 2 + 4 :, original.width // 2 + 4 :].any()
    assert store.picture_indexes(task_id) == [1]
    assert gallery.picture(task_id, 1) == first  # the kept one, not drawn again


def test_a_picture_drawn_before_is_served_as_it_is(store: TaskStore, gallery: Gallery) -> None:
    jpeg = image_bytes(80, 60, seed=4)
    task_id = worked_task(store, event(1, seed=5), {"cat": 0.7}, pictures={0: jpeg})
    assert gallery.picture(task_id, 0) == jpeg


def test_nothing_to_draw_from_is_no_picture(
    store: TaskStore, gallery: Gallery, clock: FakeClock
) -> None:
    """Images not kept, never labeled, out of range, unknown task, or past the keep time."""
    not_kept = worked_task(store, event(1, seed=6), {"dog": 0.8})
    unlabeled = worked_task(store, event(1, seed=7), None, keep_images=True)
    kept = worked_task(store, event(1, seed=8), {"dog": 0.8}, keep_images=True)
    for task_id, index in [(not_kept, 0), (unlabeled, 0), (kept, 1), ("f" * 24, 0)]:
        assert gallery.picture(task_id, index) is None
    task = store.get(kept)
    assert task is not None and task.pictures_until is not None
    assert shown(task, task.pictures_until - 1) == [0] and shown(task, task.pictures_until) == []
    clock.now = task.pictures_until + 1  # its time is over though housekeeping has not run
    assert gallery.indexes(task) == [] and gallery.picture(kept, 0) is None


def test_an_original_that_no_longer_decodes_is_no_picture_and_says_so(
    store: TaskStore, gallery: Gallery, caplog: pytest.LogCaptureFixture
) -> None:
    task_id = worked_task(store, event(1, seed=9), {"dog": 0.8}, keep_images=True)
    store.images.update_one({"_id": f"{task_id}:0"}, {"$set": {"data": b"not an image"}})
    with caplog.at_level(logging.WARNING, logger="hook.pictures.gallery"):
        assert gallery.picture(task_id, 0) is None
    assert f"task {task_id}: image 0 does not decode for a picture" in caplog.text
    assert store.picture_indexes(task_id) == []
