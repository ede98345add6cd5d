"""Labeling: a lane's run of the detector over LOADED jobs, and their labels stored.

The images of several jobs may go through the model in one run (a GPU wants that); each job's
labels are then built from its own outputs, the rules applied per camera, and stored with the
task before any POST, so every retry sends the very same bytes. While pictures are on, the
task's images are kept (`keep_pictures_seconds` from the labels) for drawing when someone looks.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from hook import heap
from hook.callbacks.labels import camio_labels
from hook.detect.detection import Detects
from hook.detect.detector import MAX_RUN
from hook.rules.ruleset import RulesFile
from hook.store import TaskStore
from hook.worker.job import Job
from hook.worker.settling import Settler

log = logging.getLogger(__name__)


class Labeler:
    """LOADED jobs to LABELED (or retried); shared by the lanes, each with its own detector."""

    def __init__(
        self, store: TaskStore, settler: Settler, rules: RulesFile, *, keep_pictures_seconds: float
    ) -> None:
        self.store, self.settler, self.rules = store, settler, rules
        self.keep_pictures_seconds = keep_pictures_seconds  # 0: pictures off

    def label(self, jobs: Sequence[Job], detector: Detects) -> None:
        """Detect in every image of `jobs` in one run, then label each job."""
        if not jobs:
            return
        try:
            started = time.perf_counter()
            canvases = [canvas for job in jobs for canvas in job.canvases]
            outputs: Sequence[Any] = detector.run(canvases)  # as postprocess takes them
            per_image_ms = (time.perf_counter() - started) * 1000 / len(canvases)
        except Exception as exc:  # each task retried, saying why
            for job in jobs:
                self.settler.crashed(job, "labeling", exc)
            return
        at = 0
        for job in jobs:
            count = len(job.canvases)
            job.infer_ms = per_image_ms * count
            self._store(job, detector, outputs[at : at + count])
            at += count
        if len(canvases) > MAX_RUN:  # a large event's pixels and outputs are free now
            del canvases, outputs
            heap.give_back()

    def _store(self, job: Job, detector: Detects, outputs: Sequence[Any]) -> None:
        """Build the Camio labels from the job's outputs; store them before any POST."""
        try:
            rules = self.rules.in_force()  # read again by the worker's watch, never here
            per_image, dropped = [], []
            for meta, output, box in zip(job.task.images, outputs, job.boxes, strict=True):
                found = detector.postprocess(output, box)
                reported, refused = rules.apply(
                    job.task.camera, meta.key, found, box.source, detector.thresholds
                )
                per_image.append((meta.key, box.source, reported))
                dropped.extend(refused)
            body = json.dumps(camio_labels(per_image), separators=(",", ":"))
            keep = self.keep_pictures_seconds
            if not self.store.save_result(
                job.task.id, job.owner, body, dropped, keep_images_for=keep
            ):
                self.settler.lost(job)  # before its labels were stored
                return
            job.labeled(body, keep_images=keep > 0)
        except Exception as exc:  # the task is retried, saying why
            self.settler.crashed(job, "labeling", exc)
