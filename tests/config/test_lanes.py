"""hook.config.lanes: how many worker processes a machine runs (HOOK_WORKERS=0), and how a
worker's share of the cores becomes lanes and threads."""

from __future__ import annotations

import re
import subprocess

import pytest

from hook.config.lanes import CORES_PER_PROCESS, GPU_BATCH, LanePlan, plan, worker_processes
from tests.factories import ROOT


@pytest.mark.parametrize(
    ("cores", "processes", "lanes", "threads", "expected"),
    [
        (2, 1, 0, 0, LanePlan(2, 1, 1)),  # the default: a single-threaded lane per core
        (8, 1, 0, 0, LanePlan(8, 1, 1)),
        (8, 2, 0, 0, LanePlan(4, 1, 1)),  # two worker processes share the cores
        (2, 2, 0, 1, LanePlan(1, 1, 1)),  # one process per core, as the installer once did
        (16, 0, 0, 0, LanePlan(4, 1, 1)),  # automatic: 4 processes of 4 one-thread lanes
        (2, 0, 0, 0, LanePlan(2, 1, 1)),  # automatic on 2 cores: one process
        (2, 4, 0, 0, LanePlan(1, 1, 1)),  # more processes than cores: one lane each, still
        (8, 1, 0, 2, LanePlan(4, 2, 1)),  # threads given: lanes fill the rest
        (8, 1, 2, 0, LanePlan(2, 4, 1)),  # lanes given: threads fill the rest
        (2, 1, 1, 0, LanePlan(1, 2, 1)),  # one lane: one session over every core (the old way)
        (2, 1, 3, 2, LanePlan(3, 2, 1)),  # both given: as given, even if more than the cores
    ],
)
def test_the_cores_are_shared_out(
    cores: int, processes: int, lanes: int, threads: int, expected: LanePlan
) -> None:
    assert plan(cores=cores, processes=processes, lanes=lanes, threads=threads) == expected


def test_a_gpu_gets_one_lane_batching_several_tasks() -> None:
    assert plan(cores=8, processes=1, lanes=0, threads=0, device="cuda") == LanePlan(
        1, 0, GPU_BATCH
    )
    given = plan(cores=8, processes=1, lanes=2, threads=0, device="cuda", batch_images=8)
    assert given == LanePlan(2, 0, 8)


def test_a_batch_size_given_holds_on_a_cpu_too() -> None:
    assert plan(cores=2, processes=1, lanes=0, threads=0, batch_images=4).batch_images == 4


@pytest.mark.parametrize(
    ("cores", "expected"), [(1, 1), (2, 1), (4, 1), (5, 2), (8, 2), (16, 4), (64, 16)]
)
def test_automatic_processes_are_one_per_few_cores(cores: int, expected: int) -> None:
    """Enough processes that none is GIL-bound, few enough that each keeps its lanes busy."""
    assert CORES_PER_PROCESS == 4
    assert worker_processes(0, cores) == expected
    assert worker_processes(3, cores) == 3  # HOOK_WORKERS given: as given


def test_one_process_on_a_gpu() -> None:
    """Its single lane batches many tasks' images and holds the device's memory."""
    assert worker_processes(0, 16, "cuda") == 1 and worker_processes(2, 16, "cuda") == 2
    assert plan(cores=16, processes=0, lanes=0, threads=0, device="cuda").lanes == 1


def test_the_installer_counts_processes_by_the_same_rule() -> None:
    """hook-install.sh computes HOOK_WORKERS in shell (its own functions, run here with nproc
    answering each core count); it must agree with the settings' rule, and a configured 0
    must mean the same number of hook-worker@N units."""
    script = (ROOT / "hook-install.sh").read_text()
    functions = "".join(
        re.search(rf"^{name}\(\) \{{\n.*?^\}}\n", script, re.M | re.S)[0]  # type: ignore[index]
        for name in ("cores", "auto_workers", "worker_count")
    )
    for cores in (1, 2, 3, 4, 5, 8, 16, 17, 64):
        for conf in ("HOOK_WORKERS=0", "HOOK_WORKERS=3", "HOOK_WORKERS=x"):
            shell = f'{functions}nproc() {{ echo {cores}; }}\nCONF=<(echo "{conf}")\n'
            shell += "echo $(auto_workers) $(worker_count)"
            out = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, check=True)
            auto, units = map(int, out.stdout.split())
            assert auto == worker_processes(0, max(2, cores)), (cores, out.stdout)
            expected = {"HOOK_WORKERS=0": auto, "HOOK_WORKERS=3": 3, "HOOK_WORKERS=x": 1}
            assert units == expected[conf], (cores, conf)
