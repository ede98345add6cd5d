"""The settings where `auto` or 0 means "choose", as this machine resolves them.

The worker lays itself out by these (hook.worker.main) and `hook settings --effective` shows
them, so what an operator reads is what runs: the device onnxruntime can use, the precision
whose builds are here, the worker processes, lanes and threads for these cores.
"""

from __future__ import annotations

from dataclasses import dataclass

from hook.config import lanes
from hook.config.settings import Settings
from hook.detect import engines


@dataclass(frozen=True)
class Resolved:
    device: str  # cpu or cuda (HOOK_DEVICE=auto made concrete; OpenVINO picks its own)
    precision: str  # f32, bf16 or int8
    cores: int  # usable by this process
    workers: int  # worker processes on this machine
    layout: lanes.LanePlan  # each worker's lanes, threads per lane and images a run


def resolve(settings: Settings, cores: int | None = None) -> Resolved:
    """What `settings` come to here (`cores`: the usable cores, by default this process's)."""
    cores = lanes.usable_cores() if cores is None else cores
    device = engines.chosen_device(settings.device, settings.engine)
    return Resolved(
        device=device,
        precision=engines.chosen_precision(settings.precision, settings.models, device),
        cores=cores,
        workers=lanes.worker_processes(settings.workers, cores, device),
        layout=lanes.plan(
            cores=cores,
            processes=settings.workers,
            lanes=settings.lanes,
            threads=settings.threads,
            device=device,
            batch_images=settings.batch_images,
        ),
    )


def shown(settings: Settings, resolved: Resolved) -> dict[str, str]:
    """For each setting field whose value is a "choose", what it resolved to, in words."""
    layout = resolved.layout
    chosen = {
        "device": (settings.device, resolved.device),
        "precision": (settings.precision, resolved.precision),
        "workers": (settings.workers, f"{resolved.workers} on {resolved.cores} core(s)"),
        "lanes": (settings.lanes, f"{layout.lanes} per worker"),
        "threads": (settings.threads, f"{layout.threads} per lane"),
        "batch_images": (settings.batch_images, f"{layout.batch_images} a run"),
    }
    return {field: text for field, (given, text) in chosen.items() if given in ("auto", 0)}
