"""hook.worker.lanes.plan: how a worker's share of the cores becomes lanes and threads."""

from __future__ import annotations

import pytest

from hook.worker.lanes import GPU_BATCH, LanePlan, plan


@pytest.mark.parametrize(
    ("cores", "processes", "lanes", "threads", "expected"),
    [
        (2, 1, 0, 0, LanePlan(2, 1, 1)),  # the default: a single-threaded lane per core
        (8, 1, 0, 0, LanePlan(8, 1, 1)),
        (8, 2, 0, 0, LanePlan(4, 1, 1)),  # two worker processes share the cores
        (2, 2, 0, 1, LanePlan(1, 1, 1)),  # the installer's one process per core
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
