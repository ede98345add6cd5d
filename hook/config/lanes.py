"""Lanes: how many worker processes a machine runs, how many detectors each runs side by
side, and with how many threads each.

On a CPU, single-threaded sessions labeling different tasks side by side do more images a
second than one session spread over every core: an operator's threads wait for each other,
and decoding, rules and delivery run between inferences (bench/worker.py measures both). So by
default a worker runs one lane of one thread per core it may use, shared with the other worker
processes HOOK_WORKERS says run on this machine.

A process holds Python's GIL about 8 ms an image outside the models (py-spy --gil on 2 cores:
rules, labels, MongoDB, the POST; decoding and inference let it go), so one process would be
GIL-bound from about 120 images/s, and its threads wait on each other well before that. At
int8 speed a core labels about 9 images/s, so CORES_PER_PROCESS cores keep a process's GIL
about a third busy: HOOK_WORKERS=0 starts one process per that many cores (1 on 2 cores, 4 on
16), `hook run` and the installer alike.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from hook.detect.registry import DEFAULT_DEVICE

GPU_BATCH = 32  # images of several tasks in one run when a GPU labels (HOOK_BATCH_IMAGES=0)
CORES_PER_PROCESS = 4  # cores a worker process labels on when HOOK_WORKERS is 0 (automatic)


@dataclass(frozen=True)
class LanePlan:
    """A worker's lanes, each a thread with its own model sessions of `threads` threads."""

    lanes: int
    threads: int
    batch_images: int


def plan(
    *,
    cores: int,
    processes: int,
    lanes: int,
    threads: int,
    device: str = DEFAULT_DEVICE,
    batch_images: int = 0,
) -> LanePlan:
    """The layout for settings where 0 means "choose": HOOK_LANES, HOOK_THREADS, batch size.

    The cores are shared among `processes` workers (0: as `worker_processes` resolves it);
    lanes x threads per worker fill its share (at least one of each). A GPU gets one lane
    that batches several tasks' images per run.
    """
    share = max(1, cores // worker_processes(processes, cores, device))
    if device == "cuda":
        return LanePlan(lanes or 1, threads, batch_images or GPU_BATCH)
    if lanes == 0:
        lanes = max(1, share // (threads or 1))
    if threads == 0:
        threads = max(1, share // lanes)
    return LanePlan(lanes, threads, batch_images or 1)


def worker_processes(asked: int, cores: int, device: str = DEFAULT_DEVICE) -> int:
    """HOOK_WORKERS as it resolves: `asked`, or 0 for one process per CORES_PER_PROCESS cores
    (one on a GPU, whose single lane batches many tasks and holds the device's memory)."""
    if asked:
        return asked
    return 1 if device == "cuda" else max(1, math.ceil(cores / CORES_PER_PROCESS))


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as taskset or systemd set it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1
