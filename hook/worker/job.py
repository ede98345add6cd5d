"""Job: a claimed task on its way through the worker's stages, its stage said in one field.

    CLAIMED --read--> READ --load--> LOADED --label--> LABELED --deliver--> SETTLED
       |               |               |                                    ^
       +-- stored labels of an earlier try: LABELED                         |
       +-- bad image, lease lost, unexpected error: SETTLED ----------------+

A settled job is finished with: done, rescheduled, failed, given back or lost to another
worker. Only a LABELED job goes to the delivery pool, so one settled early takes no slot there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hook.detect.detection import Letterbox
from hook.task import Task


class Stage(StrEnum):
    CLAIMED = "claimed"  # leased to this worker; its images not yet read
    READ = "read"  # its image bytes read from MongoDB: for a lane to decode
    LOADED = "loaded"  # images decoded and letterboxed: for the detector
    LABELED = "labeled"  # labels stored with the task (now or by an earlier try): to deliver
    SETTLED = "settled"  # nothing more to do here


@dataclass
class Job:
    """A claimed task and what the stages made of it so far."""

    task: Task
    owner: str  # this claim's lease owner: unique per claim, so a stale job cannot pass for new
    claimed: float  # monotonic time of the claim, for the claim-to-done figure
    stage: Stage = Stage.CLAIMED
    data: list[bytes] | None = None  # the images' bytes as read (None: some were missing)
    canvases: list[Any] = field(default_factory=list)  # what the detector's to_canvas made
    boxes: list[Letterbox] = field(default_factory=list)
    body: str | None = None  # the labels JSON, once LABELED
    keep_images: bool = False  # its images stay after it is done, for its pictures
    infer_ms: float = 0.0  # 0 when the labels are an earlier try's, resent
    done_at: float | None = None  # wall time its callback answered with a 2xx
    let_go: bool = False  # the Settler has told the worker what became of it (once, ever)

    def read(self, data: list[bytes] | None) -> None:
        self.data, self.stage = data, Stage.READ

    def loaded(self, canvases: list[Any], boxes: list[Letterbox]) -> None:
        self.canvases, self.boxes = canvases, boxes
        self.data, self.stage = None, Stage.LOADED

    def labeled(self, body: str, *, keep_images: bool) -> None:
        self.body, self.keep_images, self.stage = body, keep_images, Stage.LABELED
        self.canvases = []  # the detector's input is not needed any more: free it early

    def settle(self) -> None:
        self.stage = Stage.SETTLED
        self.canvases, self.data = [], None
