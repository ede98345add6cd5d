"""Loading: claimed jobs' images read in one query (the fetch thread), then each job decoded and
letterboxed for the detector by the lane that labels it, so decoding runs on every core. A
worker of one lane (a GPU's, batching many images a run) has them decoded by the fetch thread
instead (`decode_on_read`), so decoding overlaps the lane's runs rather than waiting between.

JPEGs decode at the smallest DCT scale that still covers what the detector needs (the canvas,
or a large frame's tiles), the cheapest way to the same pixels; nothing is decoded for the
pictures, which are drawn when someone looks (hook.pictures). A job whose labels an earlier
attempt stored needs no image: it goes straight to delivery. A missing or bad image fails its
own job with the reason; any other trouble retries that job; the others of the batch go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from hook.detect.detection import Detects
from hook.errors import BadImage
from hook.intake.images import decode_image
from hook.store import TaskStore
from hook.worker.job import Job, Stage
from hook.worker.settling import Settler

log = logging.getLogger(__name__)


class Loader:
    """Turns CLAIMED jobs into LOADED (or LABELED, or settled); one per worker."""

    def __init__(
        self,
        store: TaskStore,
        settler: Settler,
        detector: Detects,
        *,
        max_pixels: int,
        decode_on_read: bool = False,
    ) -> None:
        self.store, self.settler, self.detector = store, settler, detector
        self.max_pixels, self.decode_on_read = max_pixels, decode_on_read

    def images_of(self, jobs: Sequence[Job]) -> dict[str, list[bytes]]:
        """The bytes of every job that needs its images, in one round trip."""
        wanted = [job.task for job in jobs if not job.task.result_json]
        return self.store.load_images_of(wanted) if wanted else {}

    def read_batch(self, jobs: Sequence[Job], ready: Callable[[Job], None]) -> None:
        """Read the jobs' images in one query and hand each job to `ready` (READ, or LOADED
        when decoding on read, or LABELED with an earlier try's labels); a batch whose images
        cannot be read (MongoDB, or a bug) goes back to the queue."""
        try:
            images = self.images_of(jobs)
        except Exception as exc:
            why = f"its images could not be read: {type(exc).__name__}: {exc}"
            log.warning("tasks %s: images not read (%s: %s)", _ids(jobs), type(exc).__name__, exc)
            for job in jobs:
                self.settler.give_back(job, why)
            return
        for job in jobs:
            if job.task.result_json:  # no image needed: straight to delivery
                job.labeled(job.task.result_json, keep_images=keeps_images(job))
            else:
                job.read(images.get(job.task.id))
                if self.decode_on_read:
                    self.load(job, job.data)  # settles the job on any trouble
            if job.stage is not Stage.SETTLED:
                ready(job)

    def load(self, job: Job, images: list[bytes] | None) -> None:
        """Decode and letterbox a READ job's images (one with stored labels never gets here:
        `read_batch` hands it on LABELED)."""
        task = job.task
        try:
            if images is None or len(images) != len(task.images):
                missing = len(task.images) - len(images or ())
                self.settler.fail(job, f"{missing} of {len(task.images)} images missing")
                return
            canvases, boxes = [], []
            for index, (data, meta) in enumerate(zip(images, task.images, strict=True)):
                fit = self.detector.fit_for((meta.width, meta.height))
                try:
                    image, size = decode_image(data, max_pixels=self.max_pixels, fit=fit)
                except BadImage as exc:
                    self.settler.fail(job, f"image {index} (timestamp {meta.key}): {exc}")
                    return
                canvas, box = self.detector.to_canvas(image, size)
                canvases.append(canvas)
                boxes.append(box)
            job.loaded(canvases, boxes)
        except Exception as exc:  # one task's trouble must never stop the worker
            self.settler.crashed(job, "loading", exc)


def keeps_images(job: Job) -> bool:
    """Whether the earlier try that stored the job's labels kept its images for pictures."""
    return job.task.pictures_until is not None


def _ids(jobs: Sequence[Job]) -> str:
    return ", ".join(job.task.id for job in jobs)
