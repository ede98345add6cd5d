"""The gallery on a real nx-27017: a task's picture drawn from its kept original and stored
labels on the first look and kept for the next; none where there is nothing to draw from."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from PIL import Image

from hook.pictures.gallery import Gallery, shown
from hook.store import TaskStore
from hook.web.offload import offload
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


def test_a_picture_drawn_before_is_served_only_while_it_is_true(
    store: TaskStore, gallery: Gallery, clock: FakeClock
) -> None:
    """Drawn from labels the task no longer has (it was labeled again), it is drawn anew;
    past the task's time, or once the task is forgotten, none is served though one is kept."""
    jpeg = image_bytes(80, 60, seed=10)
    task_id = worked_task(store, event(1, seed=11), {"cat": 0.7}, pictures={0: jpeg})
    task = store.get(task_id)
    assert task is not None and task.labeled_at is not None and task.pictures_until is not None
    store.save_picture(task_id, 0, jpeg, task.labeled_at - 60)  # from an earlier labeling
    drawn = gallery.picture(task_id, 0)
    assert drawn is not None and drawn != jpeg and opened(drawn).size == (64, 48)
    assert gallery.picture(task_id, 0) == drawn  # kept, and now true
    clock.now = task.pictures_until + 1
    assert gallery.picture(task_id, 0) is None and store.picture(task_id, 0) == drawn
    clock.now = task.pictures_until - 1
    store.tasks.delete_one({"_id": task_id})  # forgotten, its picture not yet dropped
    assert gallery.picture(task_id, 0) is None


def test_the_drawing_runs_where_the_gallery_is_told(store: TaskStore, clock: FakeClock) -> None:
    """The web hands `draw` to a thread off its event loop (hook.web.offload); the gallery
    calls whatever `run` it is given, with the drawing and its inputs, and keeps its result."""
    calls: list[str] = []

    def run(fn: Callable[..., bytes], *args: Any) -> bytes:
        calls.append(fn.__name__)
        return fn(*args)

    gallery = Gallery(store, max_pixels=MAX_PIXELS, clock=clock, run=run)
    task_id = worked_task(store, event(1, seed=12), {"dog": 0.8}, keep_images=True)
    drawn = gallery.picture(task_id, 0)
    assert calls == ["draw"] and drawn is not None and store.picture(task_id, 0) == drawn
    assert gallery.picture(task_id, 0) == drawn and calls == ["draw"]  # kept: not drawn again


def test_offload_runs_in_place_outside_gevent() -> None:
    assert offload(sum, [1, 2, 3]) == 6
